"""aioble_pm under unmodified aioble, across processes on the simulated air: a board that
bonded with plain aioble (ble_secrets.json) reboots with aioble_pm attached; the bond is
migrated into the ZMS store and the central re-encrypts without pairing again."""
import os
import sys

import mpharness

sys.path.insert(0, os.path.join(mpharness.TESTS, "blesim"))
from hub import Hub  # noqa: E402
from test_blesim_aioble import EXAMPLES, _finish, _start, needs_aioble  # noqa: E402


@needs_aioble
def test_migration_from_a_json_written_by_real_aioble(tmp_path):
    pdir, cdir = tmp_path / "p", tmp_path / "c"
    pdir.mkdir()
    cdir.mkdir()
    board = dict(BLESIM_NAME="periph", BLESIM_PUBLIC="a4cf12345678")
    with Hub() as hub:
        central = _start("aioble_central.py", cdir, hub.port, BLESIM_NAME="central")
        boot1 = _finish(_start("aioble_peripheral.py", pdir, hub.port, **board), 20)
        assert (pdir / "ble_secrets.json").exists(), boot1
        script = os.path.join(mpharness.LIB, "pm_board.py")
        boot2 = _finish(_start(os.path.relpath(script, EXAMPLES), pdir, hub.port, **board), 20)
        out = _finish(central, 20)
    print(boot1, boot2, out, sep="\n")
    assert "B boot peers=[0] json=['ble_secrets.json.migrated']" in boot2, boot2
    assert "B connected peer_id=0" in boot2, boot2
    assert "BONDED_PEER_CONNECTED" in boot2 and "procedure=ENCRYPTION" in boot2, boot2
    assert "B written b'again' encrypted=1" in boot2, boot2
    assert "C session 2 encrypted=1 bonded=1 secret_writes=0" in out, "re-encrypted, no pairing:\n" + out
    assert (pdir / "bonds.zms").exists() and not (pdir / "ble_secrets.json").exists()
