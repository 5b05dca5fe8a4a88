"""A peripheral's Security Request on a link where we are central (unmodified aioble on
both boards): the central's host answers it by itself; the PM reports that securing
procedure and judges it like any other."""
import json

import traces


def test_security_request_on_a_central_link_bonds_and_is_reported(stack, aioble_app):
    """Just Works meets the central's parameters: it bonds (CONN_SEC_START,
    CONN_SEC_SUCCEEDED) without the app asking, and the link serves protected reads."""
    server = stack.start(0, "server", "protected_server.py", json.dumps({"links": 1, "secure": True}), aioble=True)
    out = stack.start(1, "central", "secreq_central.py", "{}", aioble=True).wait(60)
    lines = [l for l in out.splitlines() if l.startswith("central: ")]
    assert lines == [
        "central: event START None",
        "central: event SUCCEEDED BONDING",
        "central: connected True peer 0",
        "central: read b's3cret'",
        "central: end peers=[0]",
    ], out
    srv = server.wait(30)
    assert "server: link 0 secured by the central, peer 0" in srv, srv
    traces.check(stack, "central_answers_security_request")


def test_security_request_pairing_below_our_parameters_is_refused(stack, aioble_app):
    """With mitm=True the Just Works pairing falls short: the central refuses it, stores
    nothing and drops the link. (The peripheral's side depends on timing on real NimBLE:
    the link may drop before or after it received the central's keys, so it ends paired
    or bonded one-sidedly; only the central's trace is compared.)"""
    server = stack.start(0, "server", "protected_server.py", json.dumps({"links": 1, "secure": True}), aioble=True)
    out = stack.start(1, "central", "secreq_central.py", json.dumps({"mitm": True}), aioble=True).wait(60)
    lines = [l for l in out.splitlines() if l.startswith("central: ")]
    assert lines == [
        "central: event START None",
        "central: event FAILED None not authenticated: mitm=True but the link is unauthenticated",
        "central: connected False peer None",
        "central: end peers=[]",
    ], out
    srv = server.wait(30)
    assert "server: link 0 closed" in srv, srv
    traces.check(stack, "central_refuses_security_request_below_parameters", boards=("central",))
