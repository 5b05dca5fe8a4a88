"""Record store on raw flash in the ZMS format (Zephyr Memory Storage, 32-bit IDs).

Key/value records (32-bit id -> 1..max_value_size bytes) are appended to a circular
log of flash sectors, so an update programs one small record and never rewrites
others; a power cut at any point loses at most the operation in progress.

The on-flash format and every operation (mount, write, read, GC, recovery, the
extensions for NOR flash faults) are documented in docs/ZMS.md: the docs live there,
not here, so a board that imports this module from source does not parse them.
The code is split by concern: zms_fmt (format constants, CRCs, headers), zms_scan
(the viper ATE scanner), zms_log (sector state, lookups, writes), zms_gc (garbage
collection, loaded at the first sector change), zms_mount (mount and recovery), and this
module (the public API).
"""
import micropython
from micropython import const
from array import array
from .zms_fmt import ENOSPC, CorruptError, _corrupt, _check_id, _crc_at, _data_crc
from .zms_scan import _compact
from .zms_mount import _Mount

_ATE = const(16)
_INLINE = const(8)
_CHUNK = const(256)
_C_A = const(3)
_C_MAXLEN = const(4)
_C_WBM = const(5)
_C_MASK = const(7)
_CACHE_REACH = const(0x100000)  # cache slots hold ATE addresses >> 4 in 16 bits

__all__ = ("ZMS", "CorruptError", "ENOSPC")


class ZMS(_Mount):
    """A mounted ZMS partition on `flash` (see flash.py); mounting (with recovery
    after a power cut) happens here, and may program/erase to finish what a cut
    interrupted. `sector_count` defaults to all of the flash; `lookup_cache` is the
    number of RAM cache slots (0 or a power of two, 2 bytes each: an ATE's address in
    16-byte units, so stores over 1 MB run without the cache).

    Mount repairs what power cuts and torn cells leave (docs/ZMS.md, Recovery) and
    raises CorruptError (an OSError, errno EIO) "no usable sector: ..." only when no
    sector can be used (every sector closed, or only another ZMS version or ATE
    format); it then writes nothing. A flash without any ZMS header is formatted.
    If a flash operation fails midway (OSError), the next call mounts again first.
    RAM: buffers of about 0.35 KB plus 2 bytes per lookup_cache slot, whatever the
    number of records (the whole object with the default cache: 0.85 KB on a 32-bit
    port, 1.2 KB on the 64-bit unix port).
    """

    def __init__(self, flash, sector_count=None, lookup_cache=64):
        S = flash.sector_size
        wb = flash.write_block
        n = flash.size // S if sector_count is None else sector_count
        if not isinstance(n, int) or n < 2 or n * S > flash.size:
            raise ValueError("sector_count must be 2..%d, got %r" % (flash.size // S, n))
        if wb & (wb - 1) or wb > 32:
            raise ValueError("write_block must be a power of two <= 32, got %d" % wb)
        A = _ATE if wb <= _ATE else wb
        if S % A or S < 5 * A:
            raise ValueError("sector_size %d must be a multiple of %d and at least %d" % (S, A, 5 * A))
        if not isinstance(lookup_cache, int) or lookup_cache < 0 or lookup_cache & (lookup_cache - 1):
            raise ValueError("lookup_cache must be 0 or a power of two, got %r" % lookup_cache)
        self._f = flash
        self._S = S
        self._n = n
        self._A = A
        self._sec = bytearray(4 * n)
        self._ate = bytearray(A)
        self._g = bytearray(A)
        self._buf = bytearray(_CHUNK)
        self._bufmv = memoryview(self._buf)
        self._cached = lookup_cache > 0 and n * S <= _CACHE_REACH
        self._cache = array("H", bytearray(2 * (lookup_cache if self._cached else 1)))
        self._nids = -1  # ids seen by the last _table() walk
        self._damaged = False
        self._use_cache = False
        ctx = array("i", [0] * 11)
        ctx[_C_A] = A
        ctx[_C_MAXLEN] = min(0xFFFF, S - 5 * A)
        ctx[_C_WBM] = wb - 1
        ctx[_C_MASK] = len(self._cache) - 1
        self._ctx = ctx
        self._mount()

    # ---- public API ----

    max_value_size = property(lambda self: self._ctx[_C_MAXLEN])

    @micropython.native  # (the hot path: NimBLE reads every bond twice per activation)
    def read(self, ident, buf=None):
        """The value of record `ident` as bytes, or None if there is none. With `buf`,
        the value is copied into it and its length returned (None if absent);
        ValueError if buf is too small. CorruptError if the value fails its CRC."""
        if self._dirty:  # (_ready(), inlined: NimBLE reads every bond at activation)
            self._mount()
        _check_id(ident)
        addr = self._lookup(ident)
        if addr < 0:
            return None
        if self._damaged:
            raise _corrupt("record %#x: newest entry damaged (ATE at %#x)" % (ident, addr))
        ate = self._ate
        n = ate[2] | ate[3] << 8
        if n == 0:
            return None
        if buf is None:
            out = bytearray(n)
        elif len(buf) < n:
            raise ValueError("buf holds %d bytes, record %#x has %d" % (len(buf), ident, n))
        else:
            out = buf
        if n <= _INLINE:
            for i in range(n):
                out[i] = ate[8 + i]
        else:
            dst = memoryview(out)[0:n]
            self._f.read(addr - addr % self._S + (ate[8] | ate[9] << 8 | ate[10] << 16), dst)
            if not _crc_at(ate, 12, _data_crc(dst)):
                raise _corrupt("record %#x: data CRC mismatch (ATE at %#x)" % (ident, addr))
        return bytes(out) if buf is None else n

    def length(self, ident):
        """Length of the value of record `ident`, or None if there is none."""
        self._ready()
        _check_id(ident)
        addr = self._lookup(ident)
        if addr < 0:
            return None
        if self._damaged:
            raise _corrupt("record %#x: newest entry damaged (ATE at %#x)" % (ident, addr))
        n = self._ate[2] | self._ate[3] << 8
        return n or None

    def write(self, ident, data):
        """Store `data` (bytes-like, 1..max_value_size bytes) as record `ident`.
        Returns True if flash was programmed, False if the record already held exactly
        this value. OSError(ENOSPC) when the live records leave no room."""
        self._ready()
        _check_id(ident)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes-like, not %s" % type(data).__name__)
        n = len(data)
        if n == 0:
            raise ValueError("data must not be empty (use delete())")
        if n > self.max_value_size:
            raise ValueError("value of %d bytes exceeds max_value_size %d" % (n, self.max_value_size))
        crc = _data_crc(data) if n > _INLINE else 0
        addr = self._lookup(ident)
        if addr >= 0 and not self._damaged and self._same(addr, data, n, crc):
            return False
        self._append(ident, data, n, crc)
        return True

    def delete(self, ident):
        """Delete record `ident`. Returns True if flash was programmed, False if there
        was no such record."""
        self._ready()
        _check_id(ident)
        if self._lookup(ident) < 0 or not (self._damaged or self._ate[2] | self._ate[3]):
            return False
        self._append(ident, None, 0, 0)
        return True

    def ids(self):
        """Sorted list of the ids of all live records (an id whose newest entry is
        damaged is listed if an older valid one exists; read() raises for it). The
        walk uses a transient table of 8 bytes per id slot (2 KB the first time)."""
        self._ready()
        t = self._table()
        live = [t[i] & 0xFFFFFFFF for i in range(_compact(t, len(t) // 2))]
        live.sort()
        return live

    def free_space(self):
        """Bytes left for new records (ATE plus padded data, as upstream counts them):
        the capacity of all sectors but the spare, less what the live records use."""
        self._ready()
        A = self._A
        free = (self._n - 1) * (self._S - 4 * A)
        t = self._table()
        for i in range(1, len(t), 2):
            n = t[i] - 1
            if n > 0:
                free -= A + (self._al(n) if n > _INLINE else 0)
        return max(0, free)

    def sector_use_next(self):
        """Close the open sector now and collect the oldest one (as a full sector would)."""
        self._ready()
        try:
            if not self._checked:
                self._check_free()
            self._close()
            self._advance()
            self._gc()
        except Exception:
            self._dirty = True
            raise
        self._nospace = 0

    def clear(self):
        """Erase every sector and mount the empty store."""
        for s in range(self._n):
            self._f.erase(s)
        self._mount()
