"""A bonded central pairs again (it lost its keys): refused by default (the bond is
kept, the link dropped), or allowed by the app (the peer keeps its peer ID)."""
import traces


def test_repairing_refused_bond_kept(stack):
    c = stack.central(1, name="C", sessions=[{}, {"forget": True, "secure": True}])
    p1 = stack.board(0, name="P", secure=True).wait()
    p2 = stack.board(0, name="P", set_app_data="kept").wait()
    out = c.wait()
    assert "P: secure ok peer_id=0" in p1, p1
    assert "event CONN_SEC_CONFIG_REQ peer_id=0" in p2, p2
    assert "event CONN_SEC_FAILED peer_id=0 reason=rejected" in p2, p2
    assert "P: end peers=[0]" in p2, "the bond is kept:\n" + p2
    assert "C: secure failed" in out, out
    traces.check(stack, "repairing_refused_bond_kept")


def test_repairing_allowed_keeps_peer_id(stack):
    c = stack.central(1, name="C", sessions=[{}, {"forget": True, "secure": True}])
    p1 = stack.board(0, name="P", secure=True, set_app_data="mine").wait()
    p2 = stack.board(0, name="P", allow_repair=True).wait()
    out = c.wait()
    assert "P: secure ok peer_id=0" in p1, p1
    assert "P: event CONN_SEC_CONFIG_REQ: allowed" in p2, p2
    assert "P: app_data 0 b'mine'" in p2 and "P: end peers=[0]" in p2, p2
    assert "event CONN_SEC_SUCCEEDED peer_id=0" in p2, p2
    assert "C: secure ok peer_id=0" in out.split("forgot all bonds")[1], out
    traces.check(stack, "repairing_allowed_keeps_peer_id")
