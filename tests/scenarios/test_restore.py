"""Bond backup and restore across a reflash: the board exports its bonds, is flashed
again (an erased store), restores the export before the stack starts, and the bonded
central reconnects and re-encrypts with its old keys: no pairing, no key written on
either side."""
import traces

KEY = "00112233445566778899aabbccddeeff"


def test_restore_after_reflash_reencrypts_without_pairing(stack):
    c = stack.central(1, name="C", sessions=[{}, {}])
    p1 = stack.board(0, name="P", secure=True, set_app_data="owner=ann", export=KEY + ":bonds.export").wait()
    p2 = stack.board(0, name="P", secure=True, at_boot=["reflash", "restore:%s:bonds.export" % KEY]).wait()
    out = c.wait()
    assert "P: secure ok peer_id=0" in p1 and "P: exported 243 bytes" in p1, p1
    assert "P: restored peers=[0]" in p2 and "P: boot peers=[0]" in p2, p2
    assert "P: app_data 0 b'owner=ann'" in p2, p2
    assert "P: connected peer_id=0 " in p2 and "event BONDED_PEER_CONNECTED peer_id=0" in p2, p2
    assert "P: secure ok peer_id=0" in p2, p2
    assert "PEER_DATA_UPDATE_SUCCEEDED" not in p2, "the board stored no new keys:\n" + p2
    first, second = out.split("C: disconnected", 1)
    assert "event PEER_DATA_UPDATE_SUCCEEDED" in first, "the first visit bonded:\n" + out
    assert "PEER_DATA_UPDATE_SUCCEEDED" not in second, "the central stored no new keys:\n" + out
    assert out.count("C: link encrypted=1 authenticated=0 bonded=1 key_size=16") == 2, out
    assert "C: end peers=[0]" in out, out
    traces.check(stack, "restore_after_reflash_reencrypts_without_pairing")


def test_reflash_without_restore_cannot_reencrypt(stack):
    # the control: the same two boots without the restore
    c = stack.central(1, name="C", sessions=[{}, {"wait_ms": 8000}])
    p1 = stack.board(0, name="P", secure=True).wait()
    p2 = stack.board(0, name="P", secure=True, secure_timeout_ms=8000, at_boot=["reflash"]).wait()
    out = c.wait()
    assert "P: secure ok peer_id=0" in p1, p1
    assert "P: boot peers=[]" in p2 and "P: secure ok" not in p2, p2
    assert out.count("C: link encrypted=1") == 1, out
    traces.check(stack, "reflash_without_restore_cannot_reencrypt")
