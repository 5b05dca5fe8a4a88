"""A full store (max_peers=1): EVICT_LRU drops the least recently used bond for the new
one; REJECT refuses the new bond (STORAGE_FULL) and drops its link."""
import traces


def test_store_full_evict_lru(stack):
    c1 = stack.central(1, name="C1")
    p1 = stack.board(0, name="P", secure=True, max_peers=1).wait()
    o1 = c1.wait()
    c2 = stack.central(2, name="C2")
    p2 = stack.board(0, name="P", secure=True, max_peers=1).wait()
    o2 = c2.wait()
    assert "P: secure ok peer_id=0" in p1 and "C1: link encrypted=1" in o1, p1 + o1
    assert "event PEER_EVICTED peer_id=0" in p2, p2
    assert "P: secure ok peer_id=0" in p2 and "P: end peers=[0]" in p2, p2
    assert "C2: link encrypted=1 authenticated=0 bonded=1" in o2, o2
    traces.check(stack, "store_full_evict_lru")


def test_store_full_reject(stack):
    c1 = stack.central(1, name="C1")
    p1 = stack.board(0, name="P", secure=True, max_peers=1, when_full="reject").wait()
    o1 = c1.wait()
    c2 = stack.central(2, name="C2")
    p2 = stack.board(0, name="P", secure=True, max_peers=1, when_full="reject").wait()
    o2 = c2.wait()
    assert "P: secure ok peer_id=0" in p1 and "C1: link encrypted=1" in o1, p1 + o1
    assert "event STORAGE_FULL" in p2, p2
    assert "P: secure failed reason=storage full" in p2, p2
    assert "P: end peers=[0]" in p2, "the first bond is kept:\n" + p2
    assert "C2: disconnected" in o2, o2
    traces.check(stack, "store_full_reject")
