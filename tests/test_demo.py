"""The README's demo, run as a user runs it (`./dev demo` = examples/run_demo.py): two
processes on the simulated air, unmodified aioble on both, aioble_pm on the sensor."""
import os
import re
import subprocess
import sys

import pytest

import mpharness

HAS_AIOBLE = any(os.path.isdir(os.path.join(d, "aioble")) for d in mpharness.micropython_path().split(os.pathsep))


@pytest.mark.skipif(not HAS_AIOBLE, reason="aioble not found on MICROPYPATH or in ~/.micropython/lib (see README)")
def test_demo_bond_reboot_reconnect_over_fresh_rpa():
    proc = subprocess.run([sys.executable, os.path.join(mpharness.ROOT, "examples", "run_demo.py")],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    boot1, boot2 = out.split("--- sensor, boot 2")
    boot2, phone = boot2.split("--- phone")
    assert "boot with 0 bonded peer(s)" in boot1 and "unknown device" in boot1
    assert "CONN_SEC_SUCCEEDED conn=1 peer_id=0 procedure=BONDING" in boot1
    assert "boot with 1 bonded peer(s)" in boot2
    assert "BONDED_PEER_CONNECTED conn=1 peer_id=0" in boot2 and "bonded peer 0" in boot2
    assert "CONN_SEC_SUCCEEDED conn=1 peer_id=0 procedure=ENCRYPTION" in boot2, "re-encrypted, no pairing"
    assert "1 of 8 peer IDs used" in boot2
    rpas = re.findall(r"session \d from RPA ([0-9a-f:]{17})", phone)
    assert len(rpas) == 2 and rpas[0] != rpas[1], phone
    assert all(int(r[:2], 16) >> 6 == 1 for r in rpas), "resolvable private addresses"
    assert phone.count("encrypted=1 bonded=1") == 2


def test_raw_demo_without_aioble():
    proc = subprocess.run([sys.executable, os.path.join(mpharness.ROOT, "examples", "run_demo.py"), "--raw"],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    boot1, boot2 = out.split("--- sensor, boot 2")
    assert "boot with 0 bonded peer(s)" in boot1 and "unknown device" in boot1
    assert "procedure=BONDING" in boot1 and "resolves to peer 0" in boot1
    assert "boot with 1 bonded peer(s)" in boot2 and "BONDED_PEER_CONNECTED conn=1 peer_id=0" in boot2
    assert "procedure=ENCRYPTION" in boot2 and "resolves to peer 0" in boot2
    rpas = re.findall(r"session \d from RPA ([0-9a-f:]{17})", out)
    assert len(rpas) == 2 and rpas[0] != rpas[1]
