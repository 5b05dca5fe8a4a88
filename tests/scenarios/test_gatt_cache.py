"""Remote database cache on both stacks, with unmodified aioble on both boards: a
bonded client discovers once, reconnects and reads through pm.services() without
discovery (the ATT PDUs from connect to the read: the read's request and response);
the server indicates Service Changed (at the handle the client's cache lists: stock
MicroPython registers no Service Changed of its own, but NimBLE indicates any handle),
which drops the cache, and the next connection discovers again."""
import json
import re

import traces

LINE = re.compile(r"client: session (\d+) peer (\S+) read (\S+) connect_to_read_ms=\d+ services_to_read_ms=\d+ att_pdus=(\d+)")


def test_gatt_cache_reconnect_and_service_changed(stack, aioble_app):
    sessions = [{}, {}, {"sc": [1, 0xFFFF]}, {}, {}]
    server = stack.start(0, "server", "gatt_server.py", json.dumps({"links": len(sessions)}), aioble=True)
    out = stack.start(1, "client", "gatt_client.py", json.dumps({"sessions": sessions}), aioble=True).wait(120)
    srv = server.wait(30)
    got = [(int(n), peer, value, int(pdus)) for n, peer, value, pdus in LINE.findall(out)]
    assert [g[:3] for g in got] == [(n, "0", "b'21.5C'") for n in range(5)], out
    pdus = [g[3] for g in got]
    # 1: discovery (and the Service Changed subscription); 2, 3: cached, only the read;
    # 4: the cache was dropped by Service Changed: discovered again; 5: cached again
    assert pdus[1] == pdus[2] == pdus[4] == 2, out
    assert pdus[0] == pdus[3] == 36, out  # as measured on real NimBLE (MTU 23: 34 discovery, 2 subscribe)
    assert "client: asked for Service Changed at" in out and "cache stored: False" in out, out
    assert "server: indicated Service Changed 1..65535" in srv, srv
    assert "ATT PDUs while securing" not in out, out
    traces.check(stack, "gatt_cache_reconnect_and_service_changed")
