"""pytest plugin (loaded by conftest.py): MicroPython test files run on the unix port.

Files `tests/mp_*.py` are MicroPython code. Every top-level `test_*` function in them
(plain or `async def`) becomes its own pytest item, run in a fresh `micropython`
process (tests/lib/mprun.py) with a fresh temporary working directory. Pass, fail (with the
MicroPython traceback) and skip (with its reason) are reported per function.
`@heapsize("64k")` and `@timeout(s)` decorators (from mptest) are read from the source.
Host-side tests are the ordinary `test_*.py` files beside them.
"""
import ast
import os
import shutil
import subprocess
import tempfile

import pytest

import mpharness

MARK = "@@mptest:"
DEFAULT_TIMEOUT = 60


def pytest_pycollect_makemodule(module_path, parent):
    # pytest.ini adds mp_*.py to python_files; this hook keeps CPython from importing them.
    if module_path.name.startswith("mp_"):
        return MpFile.from_parent(parent, path=module_path)


def _decorator_arg(func, name):
    for dec in func.decorator_list:
        if isinstance(dec, ast.Call) and dec.args and isinstance(dec.args[0], ast.Constant):
            target = dec.func.attr if isinstance(dec.func, ast.Attribute) else getattr(dec.func, "id", None)
            if target == name:
                return dec.args[0].value
    return None


class MpFile(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text(), filename=str(self.path))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                yield MpItem.from_parent(
                    self, name=node.name, lineno=node.lineno,
                    heapsize=_decorator_arg(node, "heapsize"),
                    timeout=_decorator_arg(node, "timeout") or DEFAULT_TIMEOUT)


class MpFailure(Exception):
    pass


class MpItem(pytest.Item):
    def __init__(self, *, lineno, heapsize, timeout, **kw):
        super().__init__(**kw)
        self.lineno = lineno
        self.heapsize = heapsize
        self.timeout = timeout

    def runtest(self):
        module = self.path.stem
        cwd = tempfile.mkdtemp(prefix="mptest-")
        try:
            proc = mpharness.run(
                [os.path.join(mpharness.LIB, "mprun.py"), module, self.name],
                heapsize=self.heapsize, cwd=cwd, timeout=self.timeout, path=(str(self.path.parent),))
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            raise MpFailure("timed out after %ss\n%s" % (self.timeout, out))
        finally:
            shutil.rmtree(cwd, ignore_errors=True)
        out, _, status = proc.stdout.rpartition("\n" + MARK)
        if not status:
            out, status = proc.stdout, "CRASH (exit %d, no result line)" % proc.returncode
        if status.startswith("PASS"):
            if out.strip():
                print(out)
            return
        if status.startswith("SKIP"):
            raise pytest.skip.Exception(status[5:].strip(), _use_item_location=True)
        raise MpFailure(out + ("\n" + status if not status.startswith("FAIL") else ""))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MpFailure):
            return "MicroPython %s::%s failed:\n%s" % (self.path.name, self.name, excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.lineno - 1, "mp: %s" % self.name
