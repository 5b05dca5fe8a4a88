"""NimBLE's `struct ble_store_value_sec`, the blob behind _IRQ_GET/SET_SECRET types 1, 2.

Two layouts (FACTS 3.2): 80 bytes (upstream mynewt-nimble, MicroPython's pin) and
88 bytes (esp-nimble nimble-1.5.0-idf: bond_count, sign_counter). All integers
little-endian; addresses and keys LSB-first, as NimBLE keeps them. tests/test_blesim_layout.py
compiles the struct with `cc` and compares every offset and bit below.

A Sec is the simulator's in-RAM form: spec (MSB-first) keys and addresses.
"""

# field -> (offset, size) per layout; bit fields -> (byte offset, mask)
FIELDS = {
    80: {"peer_addr": (0, 7), "key_size": (7, 1), "ediv": (8, 2), "rand_num": (16, 8),
         "ltk": (24, 16), "irk": (41, 16), "csrk": (58, 16)},
    88: {"peer_addr": (0, 7), "bond_count": (8, 2), "key_size": (10, 1), "ediv": (12, 2),
         "rand_num": (16, 8), "ltk": (24, 16), "irk": (41, 16), "csrk": (58, 16),
         "sign_counter": (76, 4)},
}
BITS = {
    80: {"ltk_present": (40, 1), "irk_present": (57, 1), "csrk_present": (74, 1),
         "authenticated": (74, 2), "sc": (74, 4)},
    88: {"ltk_present": (40, 1), "irk_present": (57, 1), "csrk_present": (74, 1),
         "authenticated": (80, 1), "sc": (80, 2)},
}
SIZES = (80, 88)


def key(addr_type, addr):
    """7-byte secret key: NimBLE ble_addr_t = type, then the address LSB-first."""
    return bytes((addr_type,)) + bytes(reversed(addr))


def key_addr(k):
    """(addr_type, MSB-first addr) of a 7-byte key."""
    return k[0], bytes(reversed(k[1:7]))


class Sec:
    """One side's keys for one peer (spec notation); None = not present."""

    def __init__(self, addr_type=0, addr=bytes(6)):
        self.addr_type = addr_type
        self.addr = addr
        self.key_size = 0
        self.ediv = 0
        self.rand = 0
        self.ltk = None
        self.ltk_raw = bytes(16)  # the LTK field's bytes whatever ltk_present says
        self.irk = None
        self.csrk = None
        self.authenticated = False
        self.sc = False


def _rev(b):
    return bytes(reversed(b))


def pack(sec, size):
    """Blob of `size` (80/88) bytes, zero-filled first like ble_sm_fill_store_value."""
    f = FIELDS[size]
    bits = BITS[size]
    b = bytearray(size)
    o = f["peer_addr"][0]
    b[o : o + 7] = key(sec.addr_type, sec.addr)
    if sec.ltk is not None:
        b[f["key_size"][0]] = sec.key_size
        o = f["ediv"][0]
        b[o] = sec.ediv & 0xFF
        b[o + 1] = (sec.ediv >> 8) & 0xFF
        o = f["rand_num"][0]
        r = sec.rand
        for i in range(8):
            b[o + i] = (r >> (8 * i)) & 0xFF
        o = f["ltk"][0]
        b[o : o + 16] = _rev(sec.ltk)
        _set(b, bits["ltk_present"])
        if sec.authenticated:
            _set(b, bits["authenticated"])
        if sec.sc:
            _set(b, bits["sc"])
    if sec.irk is not None:
        o = f["irk"][0]
        b[o : o + 16] = _rev(sec.irk)
        _set(b, bits["irk_present"])
    if sec.csrk is not None:
        o = f["csrk"][0]
        b[o : o + 16] = _rev(sec.csrk)
        _set(b, bits["csrk_present"])
    return bytes(b)


def unpack(blob):
    """Sec from a blob; the layout comes from its length (80 or 88)."""
    size = len(blob)
    f = FIELDS[size]
    bits = BITS[size]
    o = f["peer_addr"][0]
    t, a = key_addr(blob[o : o + 7])
    s = Sec(t, a)
    s.ltk_raw = _rev(blob[f["ltk"][0] : f["ltk"][0] + 16])
    if _get(blob, bits["ltk_present"]):
        o = f["ltk"][0]
        s.ltk = _rev(blob[o : o + 16])
        s.key_size = blob[f["key_size"][0]]
        o = f["ediv"][0]
        s.ediv = blob[o] | blob[o + 1] << 8
        o = f["rand_num"][0]
        r = 0
        for i in range(8):
            r |= blob[o + i] << (8 * i)
        s.rand = r
    # NimBLE copies these bits whether or not an LTK is present
    s.authenticated = _get(blob, bits["authenticated"])
    s.sc = _get(blob, bits["sc"])
    if _get(blob, bits["irk_present"]):
        o = f["irk"][0]
        s.irk = _rev(blob[o : o + 16])
    if _get(blob, bits["csrk_present"]):
        o = f["csrk"][0]
        s.csrk = _rev(blob[o : o + 16])
    return s


def _set(b, bit):
    b[bit[0]] |= bit[1]


def _get(b, bit):
    return bool(b[bit[0]] & bit[1])
