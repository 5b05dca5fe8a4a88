"""Bluetooth LE privacy: ah(), resolvable private addresses (RPAs), and a Resolver that
maps an RPA to the key of the IRK that made it (address kinds: addrs.py, re-exported).

Addresses are what MicroPython's IRQs carry: `(addr_type, addr)`, addr_type 0 public /
1 random, addr 6 bytes MSB-first. IRKs are 16 bytes MSB-first (spec notation), as an AES
library wants them. Core spec Vol 6 Part B 1.3 (address kinds), Vol 3 Part H 2.2.2 (ah).

Firmware without `cryptolib` (built without SSL) still runs the Peer Manager: no RPA
resolves (resolve() is False, a Resolver holds no IRK) and ah()/rpa() raise.
"""
import micropython
from micropython import const
import os

try:
    import cryptolib
except ImportError:
    cryptolib = None
NO_AES = "this firmware has no cryptolib: RPAs cannot be made or resolved"


from .addrs import (ADDR_PUBLIC, ADDR_RANDOM, KIND_PUBLIC, KIND_STATIC, KIND_RPA, KIND_NRPA,  # noqa: F401
                    KIND_INVALID, check_addr, check_irk, random_kind, kind, is_rpa, is_identity)
from .addrs import check_bytes as _check_bytes

_ADDR_RANDOM = const(1)  # (ADDR_RANDOM, folded where the Resolver's hot path tests it)
_KIND_RPA = const(2)
_AES_ECB = const(1)
_MISS = const(0xFFFF)
_ENTRY = const(8)

# Builtins as module globals: native code finds these much faster than builtins (which
# it looks up after missing in the module's globals) -- hot paths use them.
_type = type
_len = len
_str = str


def ah(irk, prand):
    """The spec's random address hash: AES-128(irk, 0^104 || prand) mod 2^24 (3 bytes)."""
    check_irk(irk)
    _check_bytes(prand, 3, "prand")
    if cryptolib is None:
        raise RuntimeError(NO_AES)
    block = bytearray(16)
    block[13:16] = prand
    return cryptolib.aes(bytes(irk), _AES_ECB).encrypt(block)[13:16]


def resolve(irk, addr):
    """True if the random address `addr` is an RPA made with `irk`."""
    check_irk(irk)
    _check_bytes(addr, 6, "addr")
    if cryptolib is None:
        return False
    return random_kind(addr) == _KIND_RPA and ah(irk, addr[0:3]) == bytes(addr[3:6])


def rpa(irk):
    """A fresh RPA for `irk`: prand from os.urandom with the 0b01 top bits, random part
    neither all 0s nor all 1s."""
    check_irk(irk)
    prand = bytearray(os.urandom(3))
    prand[0] = (prand[0] & 0x3F) | 0x40
    while (prand[0] == 0x40 and prand[1] == 0 and prand[2] == 0) or (
        prand[0] == 0x7F and prand[1] == 0xFF and prand[2] == 0xFF
    ):
        prand = bytearray(os.urandom(3))
        prand[0] = (prand[0] & 0x3F) | 0x40
    return bytes(prand) + ah(irk, prand)


# Resolver state (one bytearray): a header of four u16 LE -- hit entries, miss entries,
# next hit entry, next miss entry (ring positions) -- then the cache entries, 8 bytes
# each: the RPA (6 bytes) and a u16 LE slot (index of the IRK; 0xFFFF = a known miss).
# An all-zero entry is free: no RPA has top bits 0b00.
_HEADER = const(8)


def _u16(buf, o):
    return buf[o] | buf[o + 1] << 8


def _set_u16(buf, o, v):
    buf[o] = v & 0xFF
    buf[o + 1] = (v >> 8) & 0xFF


@micropython.viper
def resolve_slot(state: ptr8, aes, io, addr: ptr8) -> int:
    """-2: `addr` (6 bytes, not checked) is no valid RPA; -1: no IRK made it; else the
    slot of the IRK that did. Looks in the caches first; on a cache miss tries the
    prebuilt AES objects in list `aes` (io = [block, out], two 16-byte scratch buffers)
    and caches the answer (reference: tests/lib/privacy_ref.py). `state, aes, io` come from
    `Resolver.tables()`: matchers that keep them call this directly and spare a method
    call per address."""
    a0 = addr[0]
    if a0 & 0xC0 != 0x40:
        return -2
    r = a0 & 0x3F
    if (r == 0 and addr[1] == 0 and addr[2] == 0) or (r == 0x3F and addr[1] == 0xFF and addr[2] == 0xFF):
        return -2
    hits = state[0] | (state[1] << 8)
    total = hits + (state[2] | (state[3] << 8))
    a5 = addr[5]
    o = 8
    end = 8 + total * 8
    while o < end:
        if (
            state[o + 5] == a5
            and state[o] == a0
            and state[o + 4] == addr[4]
            and state[o + 3] == addr[3]
            and state[o + 2] == addr[2]
            and state[o + 1] == addr[1]
        ):
            slot = state[o + 6] | (state[o + 7] << 8)
            return -1 if slot == 0xFFFF else slot
        o += 8
    block = io[0]
    out = io[1]
    b = ptr8(block)
    h = ptr8(out)
    n = int(len(aes))
    b[13] = a0
    b[14] = addr[1]
    b[15] = addr[2]
    h0 = addr[3]
    h1 = addr[4]
    found = -1
    i = 0
    while i < n:
        aes[i].encrypt(block, out)
        if h[15] == a5 and h[14] == h1 and h[13] == h0:
            found = i
            break
        i += 1
    if found >= 0:
        ring = 4
        first = 0
        size = hits
        slot = found
    else:
        ring = 6
        first = hits
        size = total - hits
        slot = 0xFFFF
    if size:
        nxt = state[ring] | (state[ring + 1] << 8)
        o = 8 + (first + nxt) * 8
        j = 0
        while j < 6:
            state[o + j] = addr[j]
            j += 1
        state[o + 6] = slot & 0xFF
        state[o + 7] = (slot >> 8) & 0xFF
        nxt += 1
        if nxt >= size:
            nxt = 0
        state[ring] = nxt & 0xFF
        state[ring + 1] = (nxt >> 8) & 0xFF
    return found


class Resolver:
    """Resolves RPAs against many IRKs, each added under a key (e.g. a peer ID).

    One AES object is built per IRK when it is added; `resolve()` allocates nothing.
    Two small caches remember recent answers, since a device keeps one RPA for ~15
    minutes and scanners see it many times: `hits` RPAs that resolved (with their key)
    and `misses` RPAs that resolved to nothing. Adding an IRK forgets the misses;
    removing one forgets the hits that pointed to it.
    """

    def __init__(self, hits=16, misses=32):
        if not (isinstance(hits, int) and isinstance(misses, int)) or not (
            0 <= hits <= 0xFFFF and 0 <= misses <= 0xFFFF
        ):
            raise ValueError("hits and misses must be ints in 0..65535")
        self._keys = []
        self._aes = []
        self._io = [bytearray(16), bytearray(16)]
        self._state = bytearray(_HEADER + (hits + misses) * _ENTRY)
        _set_u16(self._state, 0, hits)
        _set_u16(self._state, 2, misses)

    def __len__(self):
        return len(self._keys)

    def __contains__(self, key):
        return key in self._keys

    def keys(self):
        return list(self._keys)

    def __repr__(self):
        return "<Resolver %d IRKs>" % len(self._keys)  # never the IRKs themselves

    def tables(self):
        """(state, aes, io, keys): the live objects `resolve_slot()` works on, and the
        keys its slots index. Valid until the next add/remove/clear."""
        return self._state, self._aes, self._io, self._keys

    def add(self, key, irk):
        """Add (or replace) the IRK for `key`."""
        check_irk(irk)
        if cryptolib is None:
            return  # nothing can be resolved with it
        if key in self._keys:
            self.remove(key)
        self._keys.append(key)
        self._aes.append(cryptolib.aes(bytes(irk), _AES_ECB))
        st = self._state
        hits = _u16(st, 0)
        self._zero(hits, hits + _u16(st, 2))  # a new IRK may resolve an old miss

    def remove(self, key):
        """Remove the IRK of `key`; KeyError if there is none."""
        try:
            slot = self._keys.index(key)
        except ValueError:
            raise KeyError(key)
        del self._keys[slot]
        del self._aes[slot]
        st = self._state
        for i in range(_u16(st, 0)):  # hit entries: drop this slot's, renumber later ones
            o = _HEADER + i * _ENTRY + 6
            s = _u16(st, o)
            if s == slot:
                self._zero(i, i + 1)
            elif s > slot:
                _set_u16(st, o, s - 1)

    def clear(self):
        self._keys = []
        self._aes = []
        self._zero(0, _u16(self._state, 0) + _u16(self._state, 2))

    def _zero(self, first, end):
        st = self._state
        for i in range(_HEADER + first * _ENTRY, _HEADER + end * _ENTRY):
            st[i] = 0

    @micropython.native
    def resolve(self, addr_type, addr):
        """Key of the IRK that made this RPA, or None (also for any non-RPA address)."""
        try:
            if addr_type != _ADDR_RANDOM or _len(addr) != 6 or _type(addr) is _str:
                check_addr(addr_type, addr)  # raises on bad input; public addresses pass
                return None
            s = resolve_slot(self._state, self._aes, self._io, addr)
        except TypeError:
            check_addr(addr_type, addr)  # raises a TypeError that names the argument
            raise TypeError("addr")
        return self._keys[s] if s >= 0 else None
