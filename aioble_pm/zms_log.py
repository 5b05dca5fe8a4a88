"""ZMS log: sector bookkeeping, walking ATEs newest first, appending, sector changes (the
GC itself: zms_gc.py)."""
import micropython
from micropython import const
from array import array
from .zms_fmt import ENOSPC, _crc8, _header, _u32, _put32
from .zms_scan import _scan, _slot

# Copies of zms_fmt's private constants (const() names starting with _ are not exported).
_ATE = const(16)
_INLINE = const(8)
_VERSION = const(1)
_MAGIC = const(0x42)
_CHUNK = const(256)
_C_MODE = const(0)
_C_CYC = const(1)
_C_SLOT0 = const(2)
_C_WBM = const(5)
_C_BASE = const(6)
_C_MASK = const(7)
_C_IDLO = const(8)
_C_IDHI = const(9)
_C_HIT = const(10)
_F_EMPTY = const(1)
_F_CLOSED = const(2)
_F_FOREIGN = const(4)  # a header of another ZMS format/version: not usable here




class _Log:
    """Sector state and the log (the parts of ZMS below mount; see zms.py for the fields)."""

    # ---- sector bookkeeping ----

    def _al(self, n):
        m = self._ctx[_C_WBM]  # write_block - 1
        return (n + m) & ~m

    def _closed(self, s):
        return self._sec[4 * s + 1] & _F_CLOSED

    def _close_off(self, s):
        return (self._sec[4 * s + 2] | self._sec[4 * s + 3] << 8) * self._A

    def _set_ctx(self, ctx, s, mode):
        ctx[_C_MODE] = mode
        ctx[_C_CYC] = self._sec[4 * s]
        ctx[_C_BASE] = s * self._S

    def _load_header(self, s):
        """Read sector s's empty and close ATEs into _sec."""
        A = self._A
        S = self._S
        b = self._bufmv[0 : 2 * A]
        self._f.read(s * S + S - 2 * A, b)
        h = _header(b, A, S)
        sec = self._sec
        if h == -2 or h == -3:
            # another ATE format or version: skipped as Zephyr does (a torn erase can
            # leave such a header too); mount refuses only if no sector is ours
            self._foreign = self._foreign or "sector %d: %s" % (s, (
                "ATE format %d not supported (only 32-bit ids)" % (b[A + 14] & 0x0F)) if h == -2 else (
                "ZMS version %d not supported" % b[A + 12]))
            h = _F_FOREIGN << 8
        elif h < 0:
            h = 0
        sec[4 * s] = h & 0xFF
        sec[4 * s + 1] = (h >> 8) & 0xFF
        sec[4 * s + 2] = (h >> 16) & 0xFF
        sec[4 * s + 3] = (h >> 24) & 0xFF

    def _format_sector(self, s):
        """Erase sector s and give it a new empty ATE."""
        S = self._S
        A = self._A
        self._f.erase(s)
        if self._cached:
            c = self._cache
            lo = s * S >> 4  # (the cache keeps addresses in 16-byte units)
            for i in range(len(c)):
                if lo <= c[i] < lo + (S >> 4):
                    c[i] = 0
        # Cycle rule (upstream): old empty ATE's cycle + 1, skipping the close ATE's
        # cycle. After a real erase both slots read 0xFF, giving 1.
        b = self._bufmv[0 : 2 * A]
        self._f.read(s * S + S - 2 * A, b)
        e = A
        old = 0
        if b[e + 2] == b[e + 3] == 0xFF and _crc8(b, e + 1, e + 16) == b[e]:
            old = b[e + 1]
        cyc = (old + 1) & 0xFF
        if cyc == b[1]:
            cyc = (cyc + 1) & 0xFF
        ate = self._ate
        for i in range(A):
            ate[i] = 0xFF if i >= 2 else 0
        for i in range(8, 12):
            ate[i] = 0
        ate[12] = _VERSION
        ate[13] = _MAGIC
        ate[14] = 0  # ATE format 0: 32-bit ids
        ate[15] = 0
        ate[1] = cyc
        ate[0] = _crc8(ate, 1, 16)
        self._put_ate(s * S + S - A)
        sec = self._sec
        sec[4 * s] = cyc
        sec[4 * s + 1] = _F_EMPTY
        sec[4 * s + 2] = 0
        sec[4 * s + 3] = 0

    def _header_ate(self, off):
        """Fill _ate with a close/gc_done ATE (id 0xFFFFFFFF, len 0) carrying `off`."""
        ate = self._ate
        for i in range(len(ate)):
            ate[i] = 0xFF
        ate[1] = self._cycle
        ate[2] = 0
        ate[3] = 0
        _put32(ate, 8, off)
        ate[0] = _crc8(ate, 1, 16)

    def _put_ate(self, addr):
        """Program _ate at addr: body first, head (crc8, cycle, len) last."""
        sp = max(4, self._f.write_block)
        ate = memoryview(self._ate)
        if sp >= self._A:  # a write block holds the whole ATE: one program
            self._f.program(addr, ate)
        else:
            self._f.program(addr + sp, ate[sp : self._A])
            self._f.program(addr, ate[0:sp])

    def _append_ate(self, ident):
        """Program _ate at ate_wra and move ate_wra down; ident None for headers."""
        self._put_ate(self._ate_wra)
        if ident is not None and self._cached:
            self._cache[_slot(ident, len(self._cache) - 1)] = self._ate_wra >> 4
        self._ate_wra -= self._A

    # ---- walking the log ----

    def _walk(self, table):
        """One pass over every ATE, newest first, that fills the lookup cache if it is
        not built yet and, with `table`, the id table (mode 3 of _scan). False if
        the id table filled up before the end."""
        S = self._S
        A = self._A
        n = self._n
        top = S - 3 * A
        per = _CHUNK // A
        ctx = self._ctx
        buf = self._buf
        cache = self._cache
        fill = self._cached and not self._use_cache
        if fill:
            for i in range(len(cache)):
                cache[i] = 0
        if table is not None:
            ctx[_C_HIT] = 0
        mask = ctx[_C_MASK]
        tmask = 0 if table is None else len(table) // 2 - 1
        op = self._open
        s = op
        x = self._ate_wra - op * S + A
        ok = True
        while ok:
            ctx[_C_CYC] = self._sec[4 * s]
            ctx[_C_BASE] = s * S
            while x <= top:
                k = min(per, (top - x) // A + 1)
                self._f.read(s * S + x, buf if k == per else self._bufmv[0 : k * A])
                ctx[_C_SLOT0] = x
                if fill:
                    ctx[_C_MODE] = 2
                    _scan(buf, 0, k, ctx, cache)
                if table is not None:
                    ctx[_C_MODE] = 3
                    ctx[_C_MASK] = tmask
                    ok = _scan(buf, 0, k, ctx, table) != -2
                    ctx[_C_MASK] = mask
                    if not ok:
                        break
                x += k * A
            s = (s - 1) % n
            if s == op or not self._closed(s):
                break
            x = self._close_off(s)
        if fill and ok:
            self._use_cache = True
        return ok

    def _table(self):
        """An int32 array of (id, len + 1) pairs, one per id, for the newest valid ATE
        of every id (len 0: deleted); free entries hold (0, 0)."""
        size = 256 if self._nids < 0 else 64
        while size < 4 * self._nids:
            size *= 2
        while True:
            t = array("i", bytearray(8 * size))  # (from a list: a transient list as big again)
            if self._walk(t):
                self._nids = self._ctx[_C_HIT]
                return t
            size *= 4

    @micropython.native  # (with read() and _find(): boot 1.15 -> 1.06 x aioble, +2.8 KB .mpy)
    def _lookup(self, ident):
        """Address of the newest ATE of ident (left in _ate; see _find), or -1."""
        if self._cached:
            if not self._use_cache:
                self._walk(None)  # the cache is built on first use after a mount
            start = self._cache[_slot(ident, self._ctx[_C_MASK])] << 4
            if start == 0:
                return -1
        else:
            start = self._ate_wra + self._A  # the newest ATE slot (ate_wra itself is free)
        return self._find(ident, start)

    @micropython.native
    def _find(self, ident, start):
        """Walk back from address `start` to the newest ATE of ident: valid, or damaged
        (then _damaged is set: a torn ATE is zeroed at mount, so this is corruption)."""
        S = self._S
        A = self._A
        top = S - 3 * A
        per = _CHUNK // A
        ctx = self._ctx
        ctx[_C_MODE] = 1
        ctx[_C_IDLO] = ident & 0xFFFF
        ctx[_C_IDHI] = (ident >> 16) & 0xFFFF
        s = start // S
        x = start - s * S
        k = 1  # the first read is one slot: a cached address usually is the ATE itself
        while True:
            ctx[_C_CYC] = self._sec[4 * s]
            while x <= top:
                if k > 1 and x + k * A > top + A:
                    k = (top - x) // A + 1
                b = self._ate if k == 1 else (self._buf if k == per else self._bufmv[0 : k * A])
                self._f.read(s * S + x, b)
                ctx[_C_SLOT0] = x
                j = _scan(b, 0, k, ctx, self._cache)
                if j >= 0:
                    if k > 1:
                        self._ate[0:A] = self._bufmv[j * A : j * A + A]
                    self._damaged = ctx[_C_HIT] == 3
                    return s * S + x + j * A
                x += k * A
                k = per
            s = (s - 1) % self._n
            if s == self._open or not self._closed(s):
                return -1
            x = self._close_off(s)
            k = per

    def _same(self, addr, data, n, crc):
        """Does the ATE found at addr (now in _ate) hold exactly `data`?"""
        ate = self._ate
        if ate[2] | ate[3] << 8 != n:
            return False
        if n <= _INLINE:
            for i in range(n):
                if ate[8 + i] != data[i]:
                    return False
            return True
        if _u32(ate, 12) != crc:
            return False
        src = addr - addr % self._S + _u32(ate, 8)
        mv = memoryview(data)
        done = 0
        while done < n:
            k = min(_CHUNK, n - done)
            b = self._bufmv[0:k]
            self._f.read(src + done, b)
            if b != mv[done : done + k]:
                return False
            done += k
        return True

    # ---- writing and garbage collection ----

    def _append(self, ident, data, n, crc):
        A = self._A
        need = (self._al(n) + A) if n > _INLINE else (A if n else 0)
        if self._nospace and need >= self._nospace:
            raise OSError(ENOSPC, "ZMS full: no room for a %d-byte record" % n)
        try:
            if not self._checked:
                self._check_free()
            room = self._make_room(need, n)
            if room:
                ate = self._ate
                for i in range(A):
                    ate[i] = 0 if i < _ATE else 0xFF
                ate[1] = self._cycle
                ate[2] = n & 0xFF
                ate[3] = n >> 8
                _put32(ate, 4, ident)
                if n > _INLINE:
                    _put32(ate, 8, self._data_wra - self._open * self._S)
                    _put32(ate, 12, crc)
                    self._put_data(data, n)
                else:
                    for i in range(n):
                        ate[8 + i] = data[i]
                ate[0] = _crc8(ate, 1, 16)
                self._append_ate(ident)
        except Exception:
            self._dirty = True
            raise
        if not room:
            self._nospace = need
            raise OSError(ENOSPC, "ZMS full: no room for a %d-byte record after collecting every sector" % n)
        self._nospace = 0

    def _make_room(self, need, n):
        A = self._A
        for _ in range(self._n + 1):
            off = self._ate_wra - self._open * self._S
            if off and self._ate_wra >= self._data_wra + need and (off != A or n == 0):
                return True
            if _ == self._n:
                break
            self._close()
            self._advance()
            self._gc()
        return False

    def _put_data(self, data, n):
        mv = memoryview(data)
        wb = self._f.write_block
        body = n & ~(wb - 1)
        if body:
            self._f.program(self._data_wra, mv[0:body])
        rest = n - body
        if rest:
            b = self._buf
            for i in range(rest):
                b[i] = mv[body + i]
            for i in range(rest, wb):
                b[i] = 0xFF
            self._f.program(self._data_wra + body, self._bufmv[0:wb])
        self._data_wra += self._al(n)

    def _close(self):
        s = self._open
        A = self._A
        self._header_ate(self._ate_wra - s * self._S + A)
        self._put_ate(s * self._S + self._S - 2 * A)
        off = (self._ate_wra - s * self._S + A) // A
        sec = self._sec
        sec[4 * s + 1] |= _F_CLOSED
        sec[4 * s + 2] = off & 0xFF
        sec[4 * s + 3] = off >> 8

    def _advance(self):
        s = (self._open + 1) % self._n
        self._open = s
        self._ate_wra = s * self._S + self._S - 3 * self._A
        self._data_wra = s * self._S
        self._cycle = self._sec[4 * s]
        self._checked = True  # _gc makes sure the new sector is clean

    def _gc(self):
        """Prepare the new open sector and collect the one after it (zms_gc.py, loaded
        at the first sector change)."""
        from .zms_gc import gc

        gc(self)
