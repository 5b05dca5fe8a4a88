"""Security Request policy on both stacks, side by side: time from the peripheral's
secure() call to its result, for a central that answers the request (first bond), one
that re-encrypts after a reboot, and one that ignores the first request (simulator:
blesim.ignore_security_requests; real NimBLE: tools/realstack/hcirelay.py drops it).
Host-side (CPython): boards are tests/scenarios/boards/board.py processes. The nimble
rows need AIOBLE_PM_NIMBLE_MICROPYTHON (README: Real NimBLE in the loop).

    python bench/host_secreq_stacks.py [quick]
"""
import os
import re
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(os.path.dirname(HERE), "tests", "lib"), os.path.join(os.path.dirname(HERE), "tests"), os.path.join(os.path.dirname(HERE), "tests", "scenarios")]
import stacks  # noqa: E402

TOOK = re.compile(r"P: secure (ok|failed reason=[a-z ]+)[^\n]*\nP: secure took (\d+) ms")


def one(stack_name, ignore=0, timeout_ms=6000):
    """(ms of the first boot's secure(), ms of the second boot's, outcome of the first)"""
    with stacks.open_stack(stack_name, tempfile.mkdtemp(prefix="secreq-"), 2, {1: ignore} if ignore else None) as st:
        c = st.central(1, name="C", sessions=[{"wait_ms": timeout_ms + 2000}, {}])
        p1 = st.board(0, name="P", secure=True, secure_timeout_ms=timeout_ms).wait()
        p2 = st.board(0, name="P", secure=True, secure_timeout_ms=timeout_ms).wait()
        c.wait()
    m1, m2 = TOOK.search(p1), TOOK.search(p2)
    if not m1 or not m2:
        raise RuntimeError("%s: no result:\n%s\n%s" % (stack_name, p1, p2))
    return int(m1.group(2)), int(m2.group(2)), m1.group(1)


def main():
    quick = "quick" in sys.argv
    names = ["sim"] + ([] if stacks.nimble_missing() else ["nimble"])
    if "nimble" not in names:
        print("(nimble rows skipped: %s)" % stacks.nimble_missing())
    runs = 1 if quick else 5
    for name in names:
        first, again = [], []
        for _ in range(runs):
            a, b, _ = one(name)
            first.append(a)
            again.append(b)
        print("bench: secreq_first_bond_%s = %d ms" % (name, statistics.median(first)))
        print("bench: secreq_reencrypt_%s = %d ms" % (name, statistics.median(again)))
        if not quick:
            took, _, outcome = one(name, ignore=1)
            print("(%s, central ignores the first request: %s)" % (name, outcome))
            print("bench: secreq_ignored_first_%s = %d ms" % (name, took))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
