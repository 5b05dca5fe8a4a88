"""Protected characteristics and auto-secure on both stacks, unmodified aioble on both
boards. The server protects a characteristic (read and write ENCRYPTED), its descriptor
(read ENCRYPTED: checked by the PM, the binding drops descriptor permissions), one
AUTHENTICATED and one AUTHORIZED (bonded peers only), and waits for the central to secure
the link (pm.wait_secure: no Security Request). Session 0: the client's plain read gets
Insufficient Authentication; with pm.auto_secure(True) the next read pairs and succeeds in
one call. Session 1 (bonded, reconnected): the first read re-encrypts."""
import json

import traces


def test_protected_characteristics_pair_and_auto_secure_reads(stack, aioble_app):
    server = stack.start(0, "server", "protected_server.py", json.dumps({"links": 2}), aioble=True)
    out = stack.start(1, "client", "protected_client.py", json.dumps({"sessions": 2}), aioble=True).wait(120)
    srv = server.wait(30)
    lines = [l for l in out.splitlines() if l.startswith("client: ")]
    assert lines == [
        "client: read secret (auto-secure off) GattError 0x105",  # unbonded: ATT 0x05
        "client: event START BONDING",
        "client: event SUCCEEDED BONDING",
        "client: read secret b's3cret'",
        "client: read descriptor b'key'",
        "client: read strong GattError 0x105",  # Just Works is not authenticated: one retry, no loop
        "client: read ask b'asked'",
        "client: session 0 peer 0",
        "client: event START ENCRYPTION",  # bonded: ATT 0x0F, re-encrypted
        "client: event SUCCEEDED ENCRYPTION",
        "client: read secret b'by0'",
        "client: read descriptor b'key'",
        "client: read strong GattError 0x105",
        "client: read ask b'asked'",
        "client: session 1 peer 0",
        "client: end peers=[0]",
    ], out
    slines = [l for l in srv.splitlines() if l.startswith("server: ")]
    assert slines == [
        "server: event START None",
        "server: event SUCCEEDED BONDING",
        "server: link 0 secured by the central, peer 0",
        "server: link 0 closed, written b'by0'",
        "server: event START ENCRYPTION",
        "server: event SUCCEEDED ENCRYPTION",
        "server: link 1 secured by the central, peer 0",
        "server: link 1 closed, written b'by1'",
    ], srv
    traces.check(stack, "protected_pair_on_insufficient_authentication")
