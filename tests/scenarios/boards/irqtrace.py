# IRQ tracer for scenario boards (MicroPython; runs on the simulator and on real NimBLE).
# Records every IRQ the bluetooth binding delivers, and what the handlers answered, as one
# line each: event names, sec types, lengths, flags and order, never key bytes. Written
# to $AIOBLE_PM_TRACE at exit; tests/scenarios/traces.py normalises and compares.
import os
import sys

NAMES = {1: "CENTRAL_CONNECT", 2: "CENTRAL_DISCONNECT", 3: "GATTS_WRITE", 4: "GATTS_READ_REQUEST",
         7: "PERIPHERAL_CONNECT", 8: "PERIPHERAL_DISCONNECT", 9: "GATTC_SERVICE_RESULT",
         10: "GATTC_SERVICE_DONE", 11: "GATTC_CHARACTERISTIC_RESULT", 12: "GATTC_CHARACTERISTIC_DONE",
         13: "GATTC_DESCRIPTOR_RESULT", 14: "GATTC_DESCRIPTOR_DONE", 15: "GATTC_READ_RESULT",
         16: "GATTC_READ_DONE", 17: "GATTC_WRITE_DONE", 18: "GATTC_NOTIFY", 19: "GATTC_INDICATE",
         20: "GATTS_INDICATE_DONE", 28: "ENCRYPTION_UPDATE", 29: "GET_SECRET", 30: "SET_SECRET",
         31: "PASSKEY_ACTION"}
# Not traced, because their number or timing is the radio's, not the stacks' logic:
# scan results (5, 6), MTU exchange (21), L2CAP (22-26), connection updates (27).

lines = []
_conns = {}


def _c(h):
    # connection handles are the controller's choice: c0, c1... in order of appearance
    if h not in _conns:
        _conns[h] = "c%d" % len(_conns)
    return _conns[h]


def _hex(b):
    return "".join("%02x" % x for x in bytes(b))


def _value(st, v):
    if v is None:
        return "None"
    v = bytes(v)
    if st in (1, 2) and len(v) == 80:  # struct ble_store_value_sec: flags, never keys
        return "sec80(addr=%d:%s ks=%d ltk=%d irk=%d csrk=%d auth=%d sc=%d)" % (
            v[0], _hex(bytes(reversed(v[1:7]))), v[7], v[40] & 1, v[57] & 1, v[74] & 1,
            (v[74] >> 1) & 1, (v[74] >> 2) & 1)
    return "[%d]" % len(v)


def _answer(r):
    if r is None or r is False or r is True:
        return str(r)
    try:
        return "[%d]" % len(r)
    except TypeError:
        return type(r).__name__


def describe(event, data):
    name = NAMES.get(event)
    if name is None:
        return None
    if event in (1, 2, 7, 8):
        h, at, a = data
        return "%s %s %d:%s" % (name, _c(h), at, _hex(a))
    if event == 28:
        h, enc, auth, bonded, ks = data
        return "%s %s enc=%d auth=%d bonded=%d ks=%d" % (name, _c(h), enc, auth, bonded, ks)
    if event == 29:
        st, idx, key = data
        return "%s type=%d index=%d key=%s" % (name, st, idx, "None" if key is None else _hex(key))
    if event == 30:
        st, key, val = data
        return "%s type=%d key=%s value=%s" % (name, st, _hex(key), _value(st, val))
    if event == 31:
        h, action, _passkey = data  # the number is random: only the action is compared
        return "%s %s action=%d" % (name, _c(h), action)
    if event in (3, 4):
        return "%s %s handle=%d" % (name, _c(data[0]), data[1])
    if event in (15, 18, 19):
        return "%s %s handle=%d len=%d" % (name, _c(data[0]), data[1], len(data[2]))
    if event in (16, 17, 20):
        return "%s %s handle=%d status=%d" % (name, _c(data[0]), data[1], data[2])
    if event == 9:
        return "%s %s %d-%d %s" % (name, _c(data[0]), data[1], data[2], data[3])
    if event == 11:
        return "%s %s def=%d value=%d props=%d %s" % (name, _c(data[0]), data[1], data[2], data[3], data[4])
    if event == 13:
        return "%s %s handle=%d %s" % (name, _c(data[0]), data[1], data[2])
    return "%s %s status=%d" % (name, _c(data[0]), data[1])  # *_DONE of discovery


def wrap(handler):
    """An IRQ handler that records, then calls `handler` and records its answer."""
    def traced(event, data):
        line = describe(event, data)
        r = handler(event, data)
        if line is not None:
            if event in (29, 30):
                line += " -> " + _answer(r)
            lines.append(line)
        return r
    return traced


class TracedBLE:
    """Stands in for a BLE object given to code that installs its own IRQ handler
    (`pm.attach(TracedBLE(ble), irq)`): the handler is wrapped, all else passes through."""

    def __init__(self, ble):
        self._ble = ble

    def irq(self, handler):
        return self._ble.irq(wrap(handler))

    def __getattr__(self, name):
        return getattr(self._ble, name)


def install_aioble():
    """Trace an aioble app: wrap aioble's own IRQ dispatcher (after `import aioble`)."""
    from aioble import core

    core.ble.irq(wrap(core.ble_irq))


def dump():
    path = os.getenv("AIOBLE_PM_TRACE")
    if path:
        with open(path, "w") as f:
            for line in lines:
                f.write(line + "\n")


sys.atexit(dump)
