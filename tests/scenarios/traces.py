"""Golden IRQ traces: recorded on real NimBLE, compared on both stacks.

A scenario's trace is the IRQ lines (boards/irqtrace.py) of every boot of every board,
in boot order, under a header "== NAME#BOOT". What is normalised, and why:
  * connection handles: c0, c1... per process, in order of appearance (the controller picks them);
  * passkeys: only the action of PASSKEY_ACTION (the number is random);
  * secret values: only their length and, for 80-byte NimBLE records, the address and flags
    (key size, LTK/IRK/CSRK present, authenticated, SC), never key bytes;
  * scan results, MTU exchanges, connection updates, L2CAP: not traced (radio timing).
Everything else must match exactly: event names, order, sec types, indexes, keys (they
are addresses, the same on both stacks), lengths, the handlers' answers, GATT handles.

Scenarios whose links run at the same time (two centrals at once) interleave their
lines by timing: they compare each boot's lines as a sorted list, handles left out
(`ordered=False`), which still checks every line's shape and count.

Recording: AIOBLE_PM_RECORD_TRACES=1 with the nimble stack writes tests/traces/NAME.trace.
"""
import difflib
import os
import re

import mpharness

DIR = os.path.join(mpharness.TESTS, "traces")


def collect(stack, boards=None):
    out = []
    for k, b in enumerate(stack.boots):
        if boards is not None and b.name not in boards:
            continue
        out.append("== %s#%d" % (b.name, k))
        out += b.trace()
    return out


def unordered(lines):
    """Each boot's lines sorted, connection handles blanked."""
    out, boot = [], []
    for line in lines + ["== end"]:
        if line.startswith("== "):
            out += sorted(boot)
            boot = []
            out.append(line)
        else:
            boot.append(re.sub(r" c\d+ ", " c? ", line))
    return out[:-1]


def check(stack, scenario, ordered=True, boards=None):
    """Compare this run's trace with the golden one (or record it, on nimble); boards:
    only the boots of these board names (where the others' lines depend on timing)."""
    got = collect(stack, boards)
    path = os.path.join(DIR, scenario + ".trace")
    if stack.name == "nimble" and os.environ.get("AIOBLE_PM_RECORD_TRACES"):
        with open(path, "w") as f:
            f.write("\n".join(got) + "\n")
        return
    if not os.path.exists(path):
        raise AssertionError("no golden trace %s: record it on real NimBLE (AIOBLE_PM_RECORD_TRACES=1, see "
                             "README)" % os.path.relpath(path, mpharness.ROOT))
    with open(path) as f:
        want = f.read().splitlines()
    if not ordered:
        got, want = unordered(got), unordered(want)
    if got != want:
        diff = "\n".join(difflib.unified_diff(want, got, "real NimBLE (golden)", stack.name, lineterm=""))
        raise AssertionError("%s: the IRQ trace differs from the real stack's:\n%s" % (scenario, diff))
