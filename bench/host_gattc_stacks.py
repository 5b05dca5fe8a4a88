"""Remote database cache on both stacks: time and ATT PDUs from connect to the first
characteristic read on a bonded, re-encrypted link, for pm.services() from the cache,
pm.services(cached=False) (full discovery: every service, characteristic and descriptor,
and the Service Changed subscription), and aioble's own lookup of one service and one
characteristic by UUID. ATT PDUs: the simulator counts them (blesim.att_pdus); on real
NimBLE tools/realstack/hcirelay.py counts ACL packets on L2CAP CID 4. Host-side
(CPython); boards are tests/scenarios/boards/gatt_server.py and gatt_client.py. The nimble
rows need AIOBLE_PM_NIMBLE_MICROPYTHON (README: Real NimBLE in the loop).

    python bench/host_gattc_stacks.py [quick]
"""
import json
import os
import re
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(os.path.dirname(HERE), "tests", "lib"), os.path.join(os.path.dirname(HERE), "tests"),
                os.path.join(os.path.dirname(HERE), "tests", "scenarios")]
import stacks  # noqa: E402

LINE = re.compile(r"client: session (\d+) peer \S+ read \S+ connect_to_read_ms=(\d+) services_to_read_ms=(\d+) att_pdus=(\d+)")
KINDS = (("cached", {}), ("discovered", {"fresh": True}), ("aioble", {"plain": True}))


def run(stack_name, n):
    """{kind: [(connect_to_read_ms, services_to_read_ms, pdus)]}; session 0 bonds."""
    sessions = [{}] + [s for _ in range(n) for _, s in KINDS]
    with stacks.open_stack(stack_name, tempfile.mkdtemp(prefix="gattc-"), 2) as st:
        st.start(0, "server", "gatt_server.py", json.dumps({"links": len(sessions)}), aioble=True)
        out = st.start(1, "client", "gatt_client.py", json.dumps({"sessions": sessions}), aioble=True).wait(300)
    rows = {int(m[0]): tuple(int(x) for x in m[1:]) for m in LINE.findall(out)}
    if len(rows) != len(sessions):
        raise RuntimeError("%s: %d of %d sessions:\n%s" % (stack_name, len(rows), len(sessions), out))
    got = {k: [] for k, _ in KINDS}
    for i in range(1, len(sessions)):
        got[KINDS[(i - 1) % len(KINDS)][0]].append(rows[i])
    return got


def main():
    if not os.path.exists(os.path.join(stacks.aioble_dir() or "", "aioble")):
        print("(gattc benchmark skipped: aioble not found)")
        return
    n = 1 if "quick" in sys.argv else 5
    names = ["sim"] + ([] if stacks.nimble_missing() else ["nimble"])
    if "nimble" not in names:
        print("(nimble rows skipped: %s)" % stacks.nimble_missing())
    for name in names:
        got = run(name, n)
        for kind, _ in KINDS:
            rows = got[kind]
            print("bench: gattc_%s_connect_to_read_%s = %d ms" % (kind, name, statistics.median(r[0] for r in rows)))
            print("bench: gattc_%s_services_to_read_%s = %d ms" % (kind, name, statistics.median(r[1] for r in rows)))
            print("bench: gattc_%s_att_pdus_%s = %d PDUs" % (kind, name, statistics.median(r[2] for r in rows)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
