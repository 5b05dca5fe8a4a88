"""First bond, reboot, re-encrypt with the stored keys: the demo as shipped
(examples/sensor.py unchanged, aioble) and the same story at the raw level (CI)."""
import os

import mpharness
import traces

SENSOR = os.path.join(mpharness.ROOT, "examples", "sensor.py")


def test_demo_sensor_unchanged(stack, aioble_app):
    phone = stack.start(1, "phone", "phone.py", aioble=True)
    boot1 = stack.start(0, "sensor", SENSOR, aioble=True).wait()
    boot2 = stack.start(0, "sensor", SENSOR, aioble=True).wait()
    out = phone.wait()
    assert "boot with 0 bonded peer(s)" in boot1 and "unknown device" in boot1, boot1
    assert "CONN_SEC_SUCCEEDED" in boot1 and "procedure=BONDING" in boot1, boot1
    assert "boot with 1 bonded peer(s)" in boot2 and "bonded peer 0" in boot2, boot2
    assert "procedure=ENCRYPTION" in boot2, boot2
    assert "link encrypted=1 bonded=1, peer 0" in boot2, boot2
    assert out.count("encrypted=1 bonded=1") == 2, out
    traces.check(stack, "demo_sensor_unchanged")


def test_raw_bond_reboot_reencrypt(stack):
    c = stack.central(1, name="C", sessions=[{}, {}])
    p1 = stack.board(0, name="P", secure=True).wait()
    p2 = stack.board(0, name="P", secure=True).wait()
    out = c.wait()
    assert "P: boot peers=[]" in p1 and "P: secure ok peer_id=0" in p1, p1
    assert "event CONN_SEC_SUCCEEDED peer_id=0" in p1, p1
    assert "P: boot peers=[0]" in p2 and "P: connected peer_id=0 " in p2, p2
    assert "event BONDED_PEER_CONNECTED peer_id=0" in p2 and "P: secure ok peer_id=0" in p2, p2
    assert out.count("C: link encrypted=1 authenticated=0 bonded=1 key_size=16") == 2, out
    assert "C: end peers=[0]" in out, out
    traces.check(stack, "raw_bond_reboot_reencrypt")


def test_app_data_survives_reboot(stack):
    c = stack.central(1, name="C", sessions=[{}, {}])
    p1 = stack.board(0, name="P", secure=True, set_app_data="owner=ann").wait()
    p2 = stack.board(0, name="P", secure=True).wait()
    out = c.wait()
    assert "P: set app_data 0" in p1, p1
    assert "P: app_data 0 b'owner=ann'" in p2, p2
    assert "P: secure ok peer_id=0" in p2 and "C: end peers=[0]" in out, p2 + out
    traces.check(stack, "app_data_survives_reboot")
