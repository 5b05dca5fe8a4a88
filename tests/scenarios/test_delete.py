"""Deleting a bond: both sides forget it and pair again (a new bond, peer ID 0 reused);
only the peripheral forgets it (the central's keys are refused: a one-sided bond)."""
import traces


def test_delete_both_then_pair_again(stack):
    c = stack.central(1, name="C", sessions=[{}, {"forget": True}])
    p1 = stack.board(0, name="P", secure=True).wait()
    p2 = stack.board(0, name="P", secure=True, at_boot=["delete_all"]).wait()
    out = c.wait()
    assert "P: secure ok peer_id=0" in p1, p1
    assert "P: at boot: delete_all\nP: boot peers=[]" in p2, p2
    assert "P: connected peer_id=None " in p2, "the deleted peer is a stranger again:\n" + p2
    assert "P: secure ok peer_id=0" in p2 and "P: end peers=[0]" in p2, p2
    assert out.count("C: link encrypted=1 authenticated=0 bonded=1") == 2, out
    traces.check(stack, "delete_both_then_pair_again")


def test_peripheral_forgot_central_did_not(stack):
    c = stack.central(1, name="C", sessions=[{}, {"wait_ms": 4000}])
    p1 = stack.board(0, name="P", secure=True).wait()
    p2 = stack.board(0, name="P", secure=True, secure_timeout_ms=3000, at_boot=["delete_all"]).wait()
    out = c.wait()
    assert "P: secure ok peer_id=0" in p1, p1
    assert "P: connected peer_id=None " in p2, p2
    assert "P: secure failed" in p2 and "P: end peers=[]" in p2, p2
    assert "C: link encrypted=0" in out, "the central's stored keys fail:\n" + out
    assert "C: end peers=[0]" in out, "and it keeps its bond (NimBLE does not pair again):\n" + out
    traces.check(stack, "peripheral_forgot_central_did_not")
