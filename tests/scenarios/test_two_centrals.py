"""Two centrals: both bond (peer IDs 0 and 1), and after a reboot both are recognised
and re-encrypt. They are served one after another: on btvirt a second link to a
peripheral that already has one completes on the central's side only (the peripheral's
host never reports it), so links open at the same time are left to the simulator's
tests (tests/mp_secman.py)."""
import traces


def test_two_centrals(stack):
    outs = []
    for _ in range(2):  # boot, then reboot: every board is a new process on its own store
        p = stack.board(0, name="P", secure=True, links=2)
        a = stack.central(1, name="C1").wait()
        b = stack.central(2, name="C2").wait()
        outs.append((p.wait(), a, b))
    (p1, a1, b1), (p2, a2, b2) = outs
    assert "P: secure ok peer_id=0" in p1 and "P: secure ok peer_id=1" in p1, p1
    assert "P: end peers=[0, 1]" in p1, p1
    assert "P: connected peer_id=0 " in p2 and "P: connected peer_id=1 " in p2, p2
    assert p2.count("event BONDED_PEER_CONNECTED") == 2 and p2.count("event CONN_SEC_SUCCEEDED") == 2, p2
    for out in (a1, b1, a2, b2):
        assert "link encrypted=1 authenticated=0 bonded=1" in out, out
    assert "C1: end peers=[0]" in a2 and "C2: end peers=[0]" in b2, a2 + b2
    traces.check(stack, "two_centrals")
