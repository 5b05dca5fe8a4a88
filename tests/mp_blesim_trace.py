# IRQ sequences of the simulator in the shape the real binding shows them (see the
# measured sequences of MicroPython 1c3c2011 + NimBLE 42849560 with aioble's dict store):
# event, sec type, index, key/value lengths, flags, the store's answer; never key bytes.
# The golden traces recorded on real NimBLE are compared with these same shapes.
import blesim
import dictstore
from blesim import layout
from mptest import eq

_NAMES = {1: "CENTRAL_CONNECT", 2: "CENTRAL_DISCONNECT", 7: "PERIPHERAL_CONNECT",
          8: "PERIPHERAL_DISCONNECT", 28: "ENCRYPTION_UPDATE", 29: "GET_SECRET",
          30: "SET_SECRET", 31: "PASSKEY_ACTION"}


def _n(v):
    return None if v is None else len(v)


class Rec:
    """A device with an aioble-like dict store that logs each IRQ's shape and answer."""

    def __init__(self, name, store=None, ble=None, **cfg):
        self.ble = ble or blesim.device(name)
        self.store = {} if store is None else store
        self.trace = []
        self.ble.irq(self.irq)
        self.ble.active(True)
        self.ble.config(bond=True, **cfg)

    def irq(self, ev, data):
        r = dictstore.answer(self.store, ev, data)
        if ev == 29:
            key = bytes(data[2]) if data[2] is not None and bytes(data[2]) == b"irk" else _n(data[2])
            self.trace.append(("GET_SECRET", data[0], data[1], key, _n(r)))
        elif ev == 30:
            key = b"irk" if bytes(data[1]) == b"irk" else len(data[1])
            self.trace.append(("SET_SECRET", data[0], key, _n(data[2]), r))
        elif ev == 28:
            self.trace.append(("ENCRYPTION_UPDATE",) + tuple(data[1:]))
        elif ev in _NAMES:
            self.trace.append((_NAMES[ev],))
        return r

    def take(self):
        t, self.trace = self.trace, []
        return t

    def mac(self):
        return self.ble.config("mac")


def _connect(c, p):
    p.ble.gap_advertise(20000, b"\x02\x01\x06")
    c.ble.gap_connect(*p.mac())
    blesim.run_until(lambda: ("PERIPHERAL_CONNECT",) in c.trace and ("CENTRAL_CONNECT",) in p.trace)
    return 1, 1


def _settle(*devs):
    for _ in range(5):
        blesim.advance(10)


_FIRST_BOND_P = [("CENTRAL_CONNECT",), ("GET_SECRET", 2, 0, 7, None), ("ENCRYPTION_UPDATE", 1, 0, 1, 16),
                 ("SET_SECRET", 1, 7, 80, True), ("SET_SECRET", 2, 7, 80, True)]
_FIRST_BOND_C = [("PERIPHERAL_CONNECT",), ("GET_SECRET", 2, 0, 7, None), ("ENCRYPTION_UPDATE", 1, 0, 1, 16),
                 ("SET_SECRET", 1, 7, 80, True), ("SET_SECRET", 2, 7, 80, True)]


def _bond():
    c, p = Rec("c"), Rec("p")
    c.take(), p.take()
    hc, hp = _connect(c, p)
    p.ble.gap_pair(hp)  # the peripheral asks: a Security Request
    _settle()
    return c, p


def test_boot_sequences():
    d = Rec("d")
    eq(d.take(), [("GET_SECRET", 2, 0, None, None), ("GET_SECRET", 10, 0, b"irk", None),
                  ("SET_SECRET", 10, b"irk", 16, True)], "first boot")
    c, p = _bond()
    blesim.reboot(p.ble)
    p2 = Rec("p", store=p.store, ble=p.ble)
    eq(p2.take(), [("GET_SECRET", 2, 0, None, 80), ("GET_SECRET", 2, 1, None, None),
                   ("GET_SECRET", 10, 0, b"irk", 16)], "boot with one bond")


def test_connect_and_first_bonding_order():
    c, p = _bond()
    eq(p.take(), _FIRST_BOND_P)
    eq(c.take(), _FIRST_BOND_C)


def test_re_encryption_order():
    c, p = _bond()
    c.ble.gap_disconnect(1)
    _settle()
    c.take(), p.take()
    hc, hp = _connect(c, p)
    p.ble.gap_pair(hp)
    _settle()
    eq(p.take(), [("CENTRAL_CONNECT",), ("GET_SECRET", 1, 0, 7, 80), ("ENCRYPTION_UPDATE", 1, 0, 1, 16)])
    eq(c.take(), [("PERIPHERAL_CONNECT",), ("GET_SECRET", 2, 0, 7, 80), ("ENCRYPTION_UPDATE", 1, 0, 1, 16)])


def test_peripheral_forgot_the_bond():
    c, p = _bond()
    c.ble.gap_disconnect(1)
    _settle()
    p.store.clear()
    c.take(), p.take()
    hc, hp = _connect(c, p)
    c.ble.gap_pair(hc)
    _settle()
    eq(p.take(), [("CENTRAL_CONNECT",), ("GET_SECRET", 1, 0, 7, None)], "negative LTK reply, no IRQ")
    eq(c.take(), [("PERIPHERAL_CONNECT",), ("GET_SECRET", 2, 0, 7, 80), ("ENCRYPTION_UPDATE", 0, 0, 0, 0)],
       "the central does not pair again by itself")


def test_re_pairing_deletes_then_bonds():
    c, p = _bond()
    c.ble.gap_disconnect(1)
    _settle()
    for k in [k for k in c.store if k[0] in (1, 2)]:
        del c.store[k]  # the central forgot; the peripheral still holds the bond
    c.take(), p.take()
    hc, hp = _connect(c, p)
    c.ble.gap_pair(hc)
    _settle()
    eq(p.take(), [("CENTRAL_CONNECT",), ("GET_SECRET", 2, 0, 7, 80),  # REPEAT_PAIRING
                  ("SET_SECRET", 1, 7, None, True), ("SET_SECRET", 1, 7, None, False),
                  ("SET_SECRET", 2, 7, None, True), ("SET_SECRET", 2, 7, None, False),
                  ("GET_SECRET", 2, 0, 7, None),
                  ("ENCRYPTION_UPDATE", 1, 0, 1, 16), ("SET_SECRET", 1, 7, 80, True), ("SET_SECRET", 2, 7, 80, True)])
    eq(c.take(), [("PERIPHERAL_CONNECT",), ("GET_SECRET", 2, 0, 7, None), ("ENCRYPTION_UPDATE", 1, 0, 1, 16),
                  ("SET_SECRET", 1, 7, 80, True), ("SET_SECRET", 2, 7, 80, True)])


def test_delete_sequence():
    c, p = _bond()
    p.take()
    blesim.forget(p.ble, *c.mac())
    _settle()
    eq(p.take(), [("SET_SECRET", 1, 7, None, True), ("SET_SECRET", 1, 7, None, False),
                  ("SET_SECRET", 2, 7, None, True), ("SET_SECRET", 2, 7, None, False),
                  ("CENTRAL_DISCONNECT",)])
    eq(c.take()[-1], ("PERIPHERAL_DISCONNECT",))
    assert (1, layout.key(*c.mac())) not in p.store
