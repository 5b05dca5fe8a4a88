"""Codec of NimBLE's `struct ble_store_value_sec` blobs, the values MicroPython's
_IRQ_GET_SECRET / _IRQ_SET_SECRET carry for SEC_OUR and SEC_PEER.

The struct differs between NimBLE builds, so the layout is inferred from the blob's
length: 80 bytes upstream mynewt-nimble (MicroPython's own pin), 88 bytes esp-nimble
1.5 (ESP-IDF 5.x). esp-nimble 1.4 is also 80 bytes but moves key_size and ediv; it is
told apart by its zero padding byte where upstream keeps key_size.

NimBLE stores addresses and keys LSB-first. This module is the one place that turns
them into the API's order: addresses and IRKs MSB-first. LTK, CSRK and rand stay
inside the blob and are never exposed.
"""
import micropython
from micropython import const

# Secret types of _IRQ_GET_SECRET / _IRQ_SET_SECRET.
SEC_OUR = const(1)  # BLE_STORE_OBJ_TYPE_OUR_SEC: keys we distributed to the peer
SEC_PEER = const(2)  # BLE_STORE_OBJ_TYPE_PEER_SEC: keys the peer distributed to us
SEC_CCCD = const(3)  # BLE_STORE_OBJ_TYPE_CCCD: only with the firmware module (gatts.py)
SEC_OUR_IRK = const(10)  # MicroPython's own: our IRK, key b"irk", 16-byte value

# Blob offsets. Upstream mynewt-nimble, sizeof 80:
_SIZE = const(80)
_KEY_SIZE = const(7)
_EDIV = const(8)
# esp-nimble inserts u16 bond_count after the address (1.4 and 1.5), and u32
# sign_counter before the authenticated/sc bits (1.5, sizeof 88):
_ESP_SIZE = const(88)
_ESP_BOND_COUNT = const(8)
_ESP_KEY_SIZE = const(10)
_ESP_EDIV = const(12)
_ESP_SIGN_COUNTER = const(76)
_ESP_FLAGS = const(80)
_ESP_AUTH_BIT = const(0x01)
_ESP_SC_BIT = const(0x02)
# Same in every layout:
_ADDR = const(0)  # ble_addr_t: type byte, 6 address bytes LSB-first
_RAND = const(16)
_LTK = const(24)
_LTK_PRESENT = const(40)
_IRK = const(41)
_IRK_PRESENT = const(57)
_CSRK = const(58)
_CSRK_PRESENT = const(74)
_PRESENT_BIT = const(0x01)  # ltk_present, irk_present
_CSRK_BIT = const(0x01)
# 80-byte layouts keep authenticated and sc beside csrk_present:
_FLAGS = const(74)
_AUTH_BIT = const(0x02)
_SC_BIT = const(0x04)

_BUFFERS = (bytes, bytearray, memoryview)
_NO_IRK = bytes(16)



def cccd_module():
    """The firmware's CCCD module (native/aioble_pm_cccd, by either name), or None."""
    for name in ("_aioble_pm_cccd", "aioble_pm_cccd"):
        try:
            return __import__(name)
        except ImportError:
            pass
    return None

def _check_buffer(value, name):
    if type(value) not in _BUFFERS:
        raise TypeError("%s must be bytes-like, not %s" % (name, type(value).__name__))


@micropython.viper
def _reverse_into(dst: ptr8, at: int, src: ptr8, off: int, n: int):
    # dst[at:at+n] = src[off:off+n] reversed (reference: tests/lib/nimble_ref.py)
    end = at + n
    j = off + n - 1
    while at < end:
        dst[at] = src[j]
        at += 1
        j -= 1


def _reversed(buf, off, n):
    out = bytearray(n)
    _reverse_into(out, 0, buf, off, n)
    return bytes(out)


def key_addr(key):
    """7-byte secret key (type byte + address LSB-first) -> (addr_type, addr MSB-first)."""
    _check_buffer(key, "key")
    if len(key) != 7:
        raise ValueError("key must be 7 bytes (type + address), got %d" % len(key))
    return key[0], _reversed(key, 1, 6)


def api_addr_type(addr_type):
    """The API's 0/1 for HCI address types 2/3 (an identity address the controller
    resolved from an RPA); other values unchanged (and checked by the caller)."""
    if addr_type == 2 or addr_type == 3:
        return addr_type - 2
    return addr_type


def addr_key(addr_type, addr):
    """(addr_type, addr MSB-first) -> the 7-byte secret key NimBLE uses."""
    if type(addr_type) is not int:
        raise TypeError("addr_type must be an int, not %s" % type(addr_type).__name__)
    if addr_type != 0 and addr_type != 1:
        raise ValueError("addr_type must be 0 (public) or 1 (random), got %d" % addr_type)
    _check_buffer(addr, "addr")
    if len(addr) != 6:
        raise ValueError("addr must be 6 bytes, got %d" % len(addr))
    out = bytearray(7)
    out[0] = addr_type
    _reverse_into(out, 1, addr, 0, 6)
    return bytes(out)


# SecInfo._bits: which booleans are set (one small int instead of five attributes).
_B_LTK = const(1)
_B_CSRK = const(2)
_B_AUTH = const(4)
_B_SC = const(8)
_B_ESP = const(16)


class SecInfo:
    """The public fields of one ble_store_value_sec blob (see parse_sec).

    addr_type, addr: the peer's identity address (addr MSB-first); key_size; ediv;
    irk: 16 bytes MSB-first, or None when the peer gave no usable IRK; layout: blob
    size (80 or 88); ltk_present, csrk_present, authenticated, sc: bools; esp: True
    for esp-nimble's layouts.
    """

    def __init__(self, value, layout, esp, key_size, ediv, flags, auth_bit, sc_bit):
        self.addr_type = value[_ADDR]
        self.addr = _reversed(value, _ADDR + 1, 6)
        self.key_size = value[key_size]
        self.ediv = value[ediv] | value[ediv + 1] << 8
        self.layout = layout
        bits = _B_ESP if esp else 0
        if value[_LTK_PRESENT] & _PRESENT_BIT:
            bits |= _B_LTK
        if value[_CSRK_PRESENT] & _CSRK_BIT:
            bits |= _B_CSRK
        if value[flags] & auth_bit:
            bits |= _B_AUTH
        if value[flags] & sc_bit:
            bits |= _B_SC
        self._bits = bits
        irk = None
        if value[_IRK_PRESENT] & _PRESENT_BIT:
            irk = _reversed(value, _IRK, 16)
            # An all-zero IRK means "no IRK" (a peer without privacy may send one);
            # anyone can make RPAs that "resolve" with it, so it must never match.
            if irk == _NO_IRK:
                irk = None
        self.irk = irk

    @property
    def ltk_present(self):
        return bool(self._bits & _B_LTK)

    @property
    def csrk_present(self):
        return bool(self._bits & _B_CSRK)

    @property
    def authenticated(self):
        return bool(self._bits & _B_AUTH)

    @property
    def sc(self):
        return bool(self._bits & _B_SC)

    @property
    def esp(self):
        return bool(self._bits & _B_ESP)

    def __repr__(self):
        a = self.addr
        return "<SecInfo %s %02x:%02x:%02x:%02x:%02x:%02x key_size=%d%s%s%s%s%s %s-%d>" % (
            "random" if self.addr_type else "public",
            a[0], a[1], a[2], a[3], a[4], a[5],
            self.key_size,
            " authenticated" if self.authenticated else "",
            " sc" if self.sc else "",
            " ltk" if self.ltk_present else "",
            " irk" if self.irk else "",
            " csrk" if self.csrk_present else "",
            "esp" if self.esp else "nimble",
            self.layout,
        )


# (esp, key_size, ediv, flags, auth_bit, sc_bit) offsets and bits of each layout
_L_ESP15 = (True, _ESP_KEY_SIZE, _ESP_EDIV, _ESP_FLAGS, _ESP_AUTH_BIT, _ESP_SC_BIT)
_L_ESP14 = (True, _ESP_KEY_SIZE, _ESP_EDIV, _FLAGS, _AUTH_BIT, _SC_BIT)
_L_UPSTREAM = (False, _KEY_SIZE, _EDIV, _FLAGS, _AUTH_BIT, _SC_BIT)


def _layout(value, at, n):
    """The layout of the n-byte blob at value[at:], or None if n is not a known size."""
    if n == _ESP_SIZE:
        return _L_ESP15
    if n != _SIZE:
        return None
    if value[at + _KEY_SIZE] == 0 and value[at + _ESP_KEY_SIZE] != 0:
        return _L_ESP14  # esp-nimble 1.4: byte 7 is padding, key_size sits at 10 (upstream: padding)
    return _L_UPSTREAM


def parse_sec(value):
    """SecInfo for a ble_store_value_sec blob, or None if its length is not a known
    layout (the caller then keeps it verbatim). Runs in IRQ context: for any
    bytes-like value it never raises; a non-buffer is a TypeError."""
    _check_buffer(value, "value")
    n = len(value)
    lay = _layout(value, 0, n)
    if lay is None:
        return None
    esp, key_size, ediv, flags, auth_bit, sc_bit = lay
    return SecInfo(value, n, esp, key_size, ediv, flags, auth_bit, sc_bit)


INDEX_AUTH = const(0x100)
INDEX_SC = const(0x200)
INDEX_IRK = const(0x400)


def index_fields(record, at):
    """What the peer index keeps of the blob at record[at:], without allocating (it runs
    for every bond at start-up): key_size | INDEX_AUTH | INDEX_SC | INDEX_IRK, or -1 for
    an unknown layout. INDEX_IRK: a usable IRK, present and not all zero (as parse_sec)."""
    lay = _layout(record, at, len(record) - at)
    if lay is None:
        return -1
    _, key_size, _, flags, auth_bit, sc_bit = lay
    r = record[at + key_size]
    if record[at + flags] & auth_bit:
        r |= INDEX_AUTH
    if record[at + flags] & sc_bit:
        r |= INDEX_SC
    if record[at + _IRK_PRESENT] & _PRESENT_BIT:
        for i in range(at + _IRK, at + _IRK + 16):
            if record[i]:
                r |= INDEX_IRK
                break
    return r
