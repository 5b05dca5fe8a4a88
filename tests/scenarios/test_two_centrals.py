"""Two centrals at once: both bond (peer IDs 0 and 1) on links open at the same time,
and after a reboot both are recognised and re-encrypt."""
import re

import traces


def test_two_centrals_at_once(stack):
    outs = []
    for _ in range(2):  # boot, then reboot: every board is a new process on its own store
        p = stack.board(0, name="P", secure=True, links=2)
        c1 = stack.central(1, name="C1", sessions=[{"hold_ms": 1500}])
        c2 = stack.central(2, name="C2", sessions=[{"hold_ms": 1500}])
        outs.append((p.wait(), c1.wait(), c2.wait()))
    (p1, a1, b1), (p2, a2, b2) = outs
    assert sorted(re.findall(r"P: secure ok peer_id=(\d)", p1)) == ["0", "1"], p1
    assert "P: end peers=[0, 1]" in p1, p1
    assert "(links open: 2)" in p1 and "(links open: 2)" in p2, "two links at once:\n" + p1 + p2
    assert sorted(re.findall(r"P: connected peer_id=(\d) ", p2)) == ["0", "1"], p2
    assert sorted(re.findall(r"P: secure ok peer_id=(\d)", p2)) == ["0", "1"], p2
    assert p2.count("event CONN_SEC_SUCCEEDED") == 2, p2
    for out in (a1, b1, a2, b2):
        assert "link encrypted=1 authenticated=0 bonded=1" in out, out
    assert "C1: end peers=[0]" in a2 and "C2: end peers=[0]" in b2, a2 + b2
    traces.check(stack, "two_centrals_at_once", ordered=False)
