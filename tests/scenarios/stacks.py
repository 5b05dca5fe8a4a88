"""The two stacks the scenarios run on, behind one interface (host side).

* `sim`: the simulator (tests/blesim): one hub process is the air, every board is a
  unix-port `micropython` of the pinned wheel joined to it. Always available.
* `nimble`: MicroPython's real NimBLE binding: a unix `micropython` built with NimBLE
  (tools/realstack/build.sh), each board on its own virtual controller of BlueZ's
  btvirt (tools/realstack/bed.py). Available when AIOBLE_PM_NIMBLE_MICROPYTHON names
  that binary; then nothing may be missing (btvirt, socat, the AF_ALG shim, aioble for
  the aioble scenarios): a missing piece is an error, not a skip.

Board i has the same public address on both stacks (btvirt's 00:AA:01:0i:00:42), so
traces compare without renaming addresses. A board "reboots" when its process ends and
a new one starts on the same board index and working directory.
"""
import json
import os
import subprocess
import sys
import tempfile

import mpharness

HERE = os.path.dirname(os.path.abspath(__file__))
BOARDS = os.path.join(HERE, "boards")
REALSTACK = os.path.join(mpharness.ROOT, "tools", "realstack")
ENV = "AIOBLE_PM_NIMBLE_MICROPYTHON"
CCCD_ENV = "AIOBLE_PM_NIMBLE_CCCD_MICROPYTHON"  # the same build with native/aioble_pm_cccd
ROMFS_ENV = "AIOBLE_PM_ROMFS"  # 1: boards import the package from a ROMFS image
sys.path.insert(0, REALSTACK)
sys.path.insert(0, os.path.join(mpharness.TESTS, "blesim"))
import bed  # noqa: E402
from hub import Hub  # noqa: E402


def addr(i):
    return bed.addr(i)


def aioble_dir():
    for d in mpharness.micropython_path().split(os.pathsep):
        if os.path.exists(os.path.join(d, "aioble", "__init__.py")) or os.path.exists(os.path.join(d, "aioble", "__init__.mpy")):
            return d
    return None


class Board:
    """One boot of one board: a running process."""

    def __init__(self, stack, name, proc, trace):
        self.stack, self.name, self.proc, self.trace_path = stack, name, proc, trace
        self.out = None

    def wait(self, timeout=60):
        try:
            self.out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.out, _ = self.proc.communicate()
            self.out += "\n(%s timed out after %d s)" % (self.name, timeout)
        return self.out

    def trace(self):
        try:
            with open(self.trace_path) as f:
                return f.read().splitlines()
        except OSError:
            return ["(no trace written)"]


class Stack:
    name = None

    def __init__(self, workdir):
        self.workdir = workdir
        self.boots = []

    def board_dir(self, i):
        d = os.path.join(self.workdir, "board%d" % i)
        os.makedirs(d, exist_ok=True)
        return d

    def start(self, i, name, script, *args, aioble=False, cccd=False):
        """Boot board i (its own working directory: its bonds.zms) running `script`
        (a path, or a file in tests/scenarios/boards) with argv `args`; cccd: on
        firmware with the CCCD module (native/aioble_pm_cccd)."""
        if not os.path.isabs(script):
            script = os.path.join(BOARDS, script)
        trace = os.path.join(self.workdir, "%s-%d.trace" % (name, len(self.boots)))
        env = self._env(i)
        env["AIOBLE_PM_TRACE"] = trace
        exe = self._exe(cccd, env)
        cmd = [exe, script] + list(args)
        if aioble:  # an unmodified aioble app: trace aioble's dispatcher, then run it
            cmd = [exe, os.path.join(BOARDS, "traced.py"), script] + list(args)
        if os.environ.get(ROMFS_ENV):  # the package (and aioble) from a ROMFS image
            cmd[1:1] = [os.path.join(BOARDS, "romfs_boot.py"), romfs_image(exe)]
        proc = subprocess.Popen(cmd, cwd=self.board_dir(i), env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        b = Board(self, name, proc, trace)
        self.boots.append(b)
        return b

    def board(self, i, **cfg):
        """Boot board i running boards/board.py with these settings (see that file)."""
        cfg.setdefault("name", "B%d" % i)
        cccd = cfg.pop("cccd", False)
        return self.start(i, cfg["name"], "board.py", json.dumps(cfg), cccd=cccd)

    def central(self, i, target=0, **cfg):
        """Board i as a central of board `target` (board.py's role "central")."""
        return self.board(i, role="central", target=addr(target).hex(), **cfg)

    def stop_all(self):
        for b in self.boots:
            if b.proc.poll() is None:
                b.proc.kill()
                b.proc.communicate()


class SimStack(Stack):
    name = "sim"

    def __init__(self, workdir, ignore_secreq=None):
        super().__init__(workdir)
        self.ignore_secreq = ignore_secreq or {}

    def __enter__(self):
        self.exe = mpharness.micropython_exe()
        self.hub = Hub().__enter__()
        return self

    def _exe(self, cccd, env):
        if cccd:
            env["BLESIM_CCCD"] = "1"  # tests/lib/_aioble_pm_cccd.py imports
        return self.exe

    def _env(self, i):
        env = mpharness.micropython_env(BOARDS)
        env.update(BLESIM_HUB=str(self.hub.port), BLESIM_NAME="board%d" % i, BLESIM_PUBLIC=addr(i).hex())
        if self.ignore_secreq.get(i):  # boards/board.py asks the simulator for it
            env["AIOBLE_PM_IGNORE_SECREQ"] = str(self.ignore_secreq[i])
        return env

    def __exit__(self, *exc):
        self.stop_all()
        self.hub.__exit__(*exc)


class NimbleStack(Stack):
    name = "nimble"

    def __init__(self, workdir, exe, shim, n, ignore_secreq=None):
        super().__init__(workdir)
        self.exe, self.shim, self.n = exe, shim, n
        self.ignore_secreq = ignore_secreq  # board -> Security Requests its host never gets

    def __enter__(self):
        self.bed = bed.Bed(self.n, shim=self.shim, workdir=os.path.join(self.workdir, "bed"),
                           drop_secreq=self.ignore_secreq).up()
        return self

    def _exe(self, cccd, env):
        if not cccd:
            return self.exe
        why = cccd_missing()
        if why:
            raise RuntimeError(why)
        return os.environ[CCCD_ENV]

    def _env(self, i):
        if i >= self.n:
            raise ValueError("board %d: the bench has %d controllers" % (i, self.n))
        # the real bluetooth module is built in: no tests/ on the path (its bluetooth.py
        # is the simulator's); asyncio is frozen (.frozen)
        path = os.pathsep.join([BOARDS, mpharness.ROOT, ".frozen", os.path.expanduser("~/.micropython/lib")]
                               + ([os.environ["MICROPYPATH"]] if os.environ.get("MICROPYPATH") else []))
        env = self.bed.env(i)
        env["MICROPYPATH"] = path
        return env

    def __exit__(self, *exc):
        self.stop_all()
        self.bed.down()


_images = {}


def romfs_image(exe):
    """A ROMFS image of aioble_pm and aioble (tools/romfs.py) for exe's architecture,
    built once per run: with AIOBLE_PM_ROMFS=1 every board imports them from it."""
    if exe not in _images:
        out = subprocess.run([exe, "-c", "import sys; print(sys.implementation._mpy >> 10 & 15)"],
                             capture_output=True, text=True).stdout.split()
        arch = {"1": "x86", "2": "x64"}.get(out[-1] if out else "")
        if arch is None:
            raise RuntimeError("%s: neither x86 nor x64, no ROMFS image built" % exe)
        sys.path.insert(0, os.path.join(mpharness.ROOT, "tools"))
        import romfs

        d = aioble_dir()
        path = os.path.join(tempfile.mkdtemp(prefix="romfs-"), "pm.romfs")
        with open(path, "wb") as f:
            f.write(romfs.build(arch, os.path.join(d, "aioble") if d else None))
        _images[exe] = path
    return _images[exe]


_shim = None


def nimble_shim():
    """The AF_ALG shim for btvirt: $AIOBLE_PM_AFALG_SHIM, else built once per run from
    tools/realstack/afalg_shim.c into a temp dir (gcc + the runtime libcrypto)."""
    global _shim
    if os.environ.get("AIOBLE_PM_AFALG_SHIM"):
        return os.environ["AIOBLE_PM_AFALG_SHIM"]
    if bed.has_af_alg():
        return None
    if _shim is None:
        _shim = os.path.join(tempfile.mkdtemp(prefix="afalg-"), "afalg_shim.so")
        subprocess.run(["sh", os.path.join(REALSTACK, "build_shim.sh"), _shim], check=True,
                       capture_output=True, text=True)
    return _shim


def _exe_missing(var, unset):
    """Why $var names no executable (None when it does); `unset` says how to get one."""
    exe = os.environ.get(var)
    if not exe:
        return "%s is not set: %s" % (var, unset)
    if not os.access(exe, os.X_OK):
        return "%s=%s is not an executable" % (var, exe)
    return None


def nimble_missing():
    """Why the nimble stack cannot run here (None when it can)."""
    return _exe_missing(ENV, "the real-NimBLE tests need a unix micropython built with NimBLE "
                        "(tools/realstack/build.sh; see README)") or bed.missing(nimble_shim())


def cccd_missing():
    """Why no real-NimBLE build with the CCCD module is at hand (None when it is)."""
    return _exe_missing(CCCD_ENV, "build one with tools/realstack/build.sh --cccd (see README: CCCD persistence)")


def open_stack(name, workdir, n=2, ignore_secreq=None):
    """ignore_secreq: {board: N}, the first N Security Requests board's host never gets
    (simulator: blesim.ignore_security_requests; NimBLE: the relay drops them)."""
    if name == "sim":
        return SimStack(workdir, ignore_secreq)
    return NimbleStack(workdir, os.environ[ENV], nimble_shim(), n, ignore_secreq)
