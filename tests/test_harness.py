"""The harness itself: per-function items, pass/fail/skip, the MicroPython traceback on
failure, async tests, crashes, timeouts and per-test heap sizes."""
import os
import subprocess
import sys
import textwrap

import mpharness

SAMPLE = '''\
from mptest import skip, heapsize, timeout


def test_passes():
    assert 1 + 1 == 2


def test_fails():
    x = 1
    assert x == 2, "deliberate failure"


def test_skipped():
    skip("no radio here")


async def test_async_passes():
    import asyncio
    await asyncio.sleep_ms(1)


async def test_async_fails():
    import asyncio
    await asyncio.sleep_ms(1)
    raise ValueError("from a coroutine")


@heapsize("16k")
def test_small_heap():
    bytearray(64 * 1024)


def test_big_heap():
    bytearray(64 * 1024)


@timeout(2)
def test_hangs():
    while True:
        pass


def test_crashes():
    import sys
    sys.exit(3)


def helper_not_a_test():
    raise RuntimeError
'''


def run_pytest(tmp_path):
    (tmp_path / "mp_sample.py").write_text(SAMPLE)
    (tmp_path / "pytest.ini").write_text("[pytest]\npython_files = mp_*.py\n")
    env = dict(os.environ, PYTHONPATH=mpharness.LIB)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "mpplugin", "-rA", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_each_function_is_an_item_with_tracebacks(tmp_path):
    proc = run_pytest(tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "5 failed, 3 passed, 1 skipped" in out, out
    for name in ("test_passes", "test_async_passes", "test_big_heap"):
        assert "PASSED mp_sample.py::%s" % name in out
    for name in ("test_fails", "test_async_fails", "test_small_heap", "test_hangs", "test_crashes"):
        assert "FAILED mp_sample.py::%s" % name in out
    assert "SKIPPED [1] mp_sample.py:13: no radio here" in out, out
    # the MicroPython traceback with file and line of the failing assertion
    assert 'mp_sample.py", line 10, in test_fails' in out, out
    assert "AssertionError: deliberate failure" in out
    assert "ValueError: from a coroutine" in out
    assert "MemoryError" in out  # 16k heap cannot hold 64 KiB
    assert "timed out after 2s" in out
    assert 'line 45, in test_crashes' in out and "SystemExit: 3" in out
    assert "helper_not_a_test" not in out
