"""The bond-mismatch doctor on both stacks: the board (peripheral) lost its bond, the
central kept its keys. The board's secure() fails with KEY_MISSING at once (NimBLE
raises no IRQ after the negative LTK reply, so it used to wait for its whole timeout),
and each side reports one BOND_MISMATCH: the board "we lost the bond", the central
"the peer did"."""

import traces


def test_one_sided_bond_reported_once_on_each_side(stack):
    c = stack.central(1, name="C", sessions=[{}, {"wait_ms": 6000}])
    p1 = stack.board(0, name="P", secure=True).wait()
    p2 = stack.board(0, name="P", secure=True, secure_timeout_ms=20000, at_boot=["delete_all"]).wait()
    out = c.wait()
    assert "P: secure ok peer_id=0" in p1, p1
    assert "P: connected peer_id=None " in p2, p2
    assert "P: event BOND_MISMATCH peer_id=None reason=key missing" in p2, p2
    assert p2.count("BOND_MISMATCH") == 1, p2
    assert "P: secure failed reason=key missing" in p2, "not its timeout:\n" + p2
    assert "C: link encrypted=0" in out, out
    assert "C: event BOND_MISMATCH peer_id=0 reason=key missing" in out, out
    assert out.count("BOND_MISMATCH") == 1, out
    assert "C: end peers=[0]" in out, "the default policy keeps the central's bond:\n" + out
    traces.check(stack, "one_sided_bond_reported_once_on_each_side")
