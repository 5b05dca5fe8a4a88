"""The simulator against a client nobody here wrote: unmodified aioble in two
micropython processes (tests/blesim/examples), sharing one air through the hub.
The peripheral process is stopped and started again (a reboot) between the sessions."""
import os
import subprocess
import sys
import time

import pytest

import mpharness

sys.path.insert(0, os.path.join(mpharness.TESTS, "blesim"))
from hub import Hub  # noqa: E402

EXAMPLES = os.path.join(mpharness.TESTS, "blesim", "examples")


def _aioble_dir():
    for d in mpharness.micropython_path().split(os.pathsep):
        if os.path.exists(os.path.join(d, "aioble", "__init__.py")) or os.path.exists(os.path.join(d, "aioble", "__init__.mpy")):
            return d
    return None


needs_aioble = pytest.mark.skipif(
    _aioble_dir() is None,
    reason="aioble not found on MICROPYPATH or in ~/.micropython/lib (see README: aioble for local runs)")


def _start(script, cwd, port, **env):
    e = mpharness.micropython_env()
    e["BLESIM_HUB"] = str(port)
    e.update(env)
    return subprocess.Popen([mpharness.micropython_exe(), os.path.join(EXAMPLES, script)], cwd=cwd, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, timeout):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError("timed out:\n" + out)
    return out


@needs_aioble
def test_aioble_bond_reboot_reconnect_encrypted(tmp_path):
    pdir, cdir = tmp_path / "p", tmp_path / "c"
    pdir.mkdir()
    cdir.mkdir()
    board = dict(BLESIM_NAME="periph", BLESIM_PUBLIC="a4cf12345678")
    t0 = time.monotonic()
    with Hub() as hub:
        central = _start("aioble_central.py", cdir, hub.port, BLESIM_NAME="central")
        boot1 = _finish(_start("aioble_peripheral.py", pdir, hub.port, **board), 20)
        assert (pdir / "ble_secrets.json").exists(), boot1
        boot2 = _finish(_start("aioble_peripheral.py", pdir, hub.port, **board), 20)
        out = _finish(central, 20)
    elapsed = time.monotonic() - t0
    print(boot1, boot2, out, "elapsed %.2f s" % elapsed, sep="\n")
    assert "C read b'hello'" in out, out
    assert "P written b'written'" in boot1, boot1
    assert "C notified b'notified'" in out, out
    # _IRQ_ENCRYPTION_UPDATE carries ints (modbluetooth.c), so aioble stores 1, not True
    # first session: a real pairing, keys persisted on both sides (OUR_SEC, PEER_SEC)
    assert "C session 1 encrypted=1 bonded=1 secret_writes=2" in out, out
    assert "P done encrypted=1 bonded=1 secret_writes=3" in boot1, boot1  # + own IRK
    # after the reboot: encrypted with the stored keys, nothing written again
    assert "C session 2 encrypted=1 bonded=1 secret_writes=0" in out, out
    assert "P done encrypted=1 bonded=1 secret_writes=0" in boot2, boot2
    assert "P written b'again'" in boot2, boot2
    assert elapsed < 20
