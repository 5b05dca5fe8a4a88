"""pm.accept(wl): after the first bond, only bonded centrals may stay connected; a
stranger is disconnected (CONN_REFUSED) and the bonded central is served as before."""
import traces


def test_accept_list_refuses_stranger(stack):
    c1 = stack.central(1, name="C1")
    p1 = stack.board(0, name="P", secure=True).wait()
    o1 = c1.wait()
    p2 = stack.board(0, name="P", secure=True, links=2, at_boot=["accept_bonded"])
    o2 = stack.central(2, name="S", sessions=[{"wait_ms": 3000}]).wait()  # first the stranger
    o3 = stack.central(1, name="C1").wait()
    p2 = p2.wait()
    assert "P: secure ok peer_id=0" in p1 and "C1: link encrypted=1" in o1, p1 + o1
    assert "event CONN_REFUSED" in p2, p2
    # refused on connect: the stranger may or may not see the link open before it drops
    assert "disconnected" in o2 and "S: link encrypted=1" not in o2 and "S: end peers=[]" in o2, o2
    assert "P: secure ok peer_id=None" not in p2 and "P: end peers=[0]" in p2, "the stranger never paired:\n" + p2
    assert "P: secure ok peer_id=0" in p2, p2
    assert "C1: link encrypted=1 authenticated=0 bonded=1" in o3, o3
    traces.check(stack, "accept_list_refuses_stranger")
