"""Pinned bonds, the pairing window and the capability probe, end to end on both stacks.
A pinned owner's bond is never evicted: with a store of one pinned peer the next central
is refused (STORAGE_FULL). With the pairing window closed, a stranger's pairing is refused
(PAIRING_CLOSED) while the bonded owner re-encrypts; the probe reports the binding."""
import traces


def test_pinned_owner_survives_a_full_store_and_a_closed_window(stack):
    owner = stack.central(1, name="O").wait  # started below, after the board
    p = stack.board(0, name="P", secure=True, max_peers=1, pin_all=True)
    o1 = owner()
    p1 = p.wait()
    p = stack.board(0, name="P", secure=True, max_peers=1, at_boot=["caps"])
    s2 = stack.central(2, name="S", sessions=[{"wait_ms": 4000}]).wait()
    p2 = p.wait()
    p = stack.board(0, name="P", secure=True, links=2, secure_timeout_ms=5000, at_boot=["window:0"])
    s3 = stack.central(2, name="S", sessions=[{"wait_ms": 4000, "forget": True}]).wait()
    o3 = stack.central(1, name="O").wait()
    p3 = p.wait()
    assert "P: secure ok peer_id=0" in p1 and "P: pinned 0" in p1 and "O: end peers=[0]" in o1, p1 + o1
    # boot 2: the store holds one pinned peer: the stranger is refused, nothing evicted
    assert "P: caps binding=nimble passkey_as_central=False peers=1 max_peers=1" in p2, p2
    assert "event STORAGE_FULL" in p2 and "event PEER_EVICTED" not in p2, p2
    # (the stranger keeps its half: a refusal at key storage comes after the exchange)
    assert "P: end peers=[0]" in p2 and "S: link encrypted=1" in s2, p2 + s2
    # boot 3: window closed: the stranger cannot pair, the owner re-encrypts
    assert "P: secure ok peer_id=0" in p3, p3
    assert "O: link encrypted=1 authenticated=0 bonded=1" in o3, o3
    # (refused when its keys arrive, after the exchange: the stranger's link was encrypted
    # a moment and it keeps its half, as documented; the board keeps nothing of it)
    assert "S: forgot all bonds" in s3 and "P: secure failed reason=pairing closed" in p3, s3 + p3
    assert "P: end peers=[0]" in p3, p3
    traces.check(stack, "pinned_owner_survives_a_full_store_and_a_closed_window")
