"""ZMS mount and recovery after a power cut or flash damage (see docs/ZMS.md)."""
from micropython import const
from .zms_fmt import _corrupt, _crc8, _data_crc, _last_dirty, _u32
from .zms_scan import _scan
from .zms_log import _Log

_INLINE = const(8)
_CHUNK = const(256)
_C_MODE = const(0)
_C_SLOT0 = const(2)
_C_HIT = const(10)
_F_EMPTY = const(1)
_F_CLOSED = const(2)
_F_FOREIGN = const(4)




class _Mount(_Log):
    """Mount: find the open sector and its write pointers, finish what a cut interrupted."""

    # ---- mount and recovery ----

    def _ready(self):
        if self._dirty:
            self._mount()  # a flash operation failed midway: recover as after a power cut

    def _mount(self, closes=None):
        n = self._n
        S = self._S
        A = self._A
        top = S - 3 * A
        self._dirty = True
        self._use_cache = False
        self._nospace = 0
        if closes is None:
            closes = {}
        closed = 0
        flags = 0
        sec = self._sec
        self._foreign = None
        for s in range(n):
            self._load_header(s)
            if closes and s in closes:  # found closed, or garbage, by an earlier pass (below)
                off = closes[s]
                sec[4 * s + 1] |= _F_CLOSED
                sec[4 * s + 2] = off & 0xFF
                sec[4 * s + 3] = off >> 8
            f = sec[4 * s + 1]
            flags |= f
            if f & _F_CLOSED:
                closed += 1
        if self._foreign and not flags & (_F_EMPTY | _F_CLOSED):
            raise _corrupt("no usable sector: " + self._foreign)
        if closed == n:
            raise _corrupt("no usable sector: all %d sectors are closed, none open to write" % n)
        op = -1
        for s in range(n):
            if sec[4 * s + 1] & _F_CLOSED and not sec[4 * ((s + 1) % n) + 1] & _F_CLOSED:
                op = (s + 1) % n
                break
        if op < 0:  # nothing closed yet: a young partition
            op = n - 1 if self._slot_valid(n - 1, top) else 0
        self._open = op
        if not self._sec[4 * op + 1] & _F_EMPTY:
            # No valid empty ATE. Erased (a cut while formatting it): format it. Else its
            # header was damaged: take the cycle of the gc_done ATE in its first slot.
            self._f.read(op * S + top, self._g)
            g = self._g
            own = not self._sec[4 * op + 1] & _F_FOREIGN
            if own and _crc8(g, 1, 16) == g[0] and g[4] & g[5] & g[6] & g[7] == 0xFF and g[2] | g[3] == 0:
                self._sec[4 * op] = g[1]
                self._sec[4 * op + 1] = _F_EMPTY
            elif not flags or closed == n - 1 or (self._clean(op) and not self._in_use((op + 1) % n)):
                # No ZMS header anywhere; or every other sector is closed, so the log
                # must go on here (a torn erase of the spare left it garbage); or a cut
                # while formatting it: format it (it holds nothing valid).
                self._format_sector(op)
            else:  # garbage, or erased in the middle of the log: a closed sector holding
                # nothing (the log goes on after it); look again
                closes[op] = (S - 2 * A) // A
                return self._mount(closes)
        self._cycle = self._sec[4 * op]
        self._recover()
        nxt = (op + 1) % n
        if self._closed(nxt):
            if self._gc_done_present():
                self._format_sector(nxt)
            else:
                self._format_sector(op)
                self._ate_wra = op * S + top
                self._data_wra = op * S
                self._cycle = self._sec[4 * op]
                self._checked = True
                self._gc()
        elif self._dirty_slot(op * S + S - 2 * A):
            # A cut while closing this sector: program the same close ATE again (it
            # lands on the same bytes) and mount anew; the next sector is then open and
            # the interrupted collection is found and rerun. If the bytes do not match,
            # the close ATE was damaged later: the sector is closed all the same.
            self._header_ate(self._ate_wra - op * S + A)
            if self._fits(self._g, self._ate):
                self._close()
            self._load_header(op)
            if not self._closed(op):
                closes[op] = (self._ate_wra - op * S + A) // A
            return self._mount(closes)
        if self._ate_wra == self._open * S + top:
            if not self._clean(self._open):
                # Nothing valid in it, yet not erased: a torn erase left it partly
                # erased. Erase it again before anything is written into it.
                self._format_sector(self._open)
                self._cycle = self._sec[4 * self._open]
                self._data_wra = self._open * S
                self._checked = True
            self._header_ate(self._data_wra - self._open * S)
            self._append_ate(None)
        self._dirty = False

    def _fits(self, old, new):
        """Can `new` be programmed over `old` (same length) without a 0 -> 1 bit?"""
        for i in range(len(new)):
            if old[i] & new[i] != new[i]:
                return False
        return True

    def _slot_valid(self, s, off):
        if not self._sec[4 * s + 1] & _F_EMPTY:
            return False
        ctx = self._ctx
        self._set_ctx(ctx, s, 0)
        ctx[_C_SLOT0] = off
        self._f.read(s * self._S + off, self._ate)
        return _scan(self._ate, 0, 1, ctx, self._cache) == 0

    def _in_use(self, s):
        """Does sector s have a header, without being closed, and hold ATEs or data?"""
        return self._sec[4 * s + 1] == _F_EMPTY and not self._clean(s)

    def _clean(self, s):
        """Is sector s erased apart from its empty ATE, fit to become the open sector?"""
        base = s * self._S
        end = self._S - self._A
        x = 0
        while x < end:
            k = min(_CHUNK, end - x)
            b = self._bufmv[0:k]
            self._f.read(base + x, b)
            if _last_dirty(b, k) >= 0:
                return False
            x += k
        return True

    def _dirty_slot(self, addr):
        self._f.read(addr, self._g)
        return _last_dirty(self._g, self._A) >= 0

    def _recover(self):
        """Find ate_wra and data_wra of the open sector (see FORMAT): scan the ATE slots
        from the top down to the first erased one (or the data end)."""
        S = self._S
        A = self._A
        op = self._open
        base = op * S
        top = S - 3 * A
        ctx = self._ctx
        self._set_ctx(ctx, op, 4)
        buf = self._buf
        per = _CHUNK // A
        last = -1
        dend = 0
        free = -1
        hi = top
        while hi >= dend and free < 0:
            lo = max(0, hi - (per - 1) * A)
            k = (hi - lo) // A + 1
            self._f.read(base + lo, self._bufmv[0 : k * A])
            ctx[_C_SLOT0] = lo
            j = k - 1
            while j >= 0:
                j = _scan(buf, j, -1, ctx, self._cache)
                if j < 0:
                    break
                x = lo + j * A
                if x < dend:  # a delete may sit right at the data end, nothing lower
                    hi = -1
                    break
                if ctx[_C_HIT] == 2:
                    free = x
                    break
                o = j * A
                if buf[o + 4] & buf[o + 5] & buf[o + 6] & buf[o + 7] != 0xFF:
                    ln = buf[o + 2] | buf[o + 3] << 8
                    if ln > _INLINE:
                        dend = _u32(buf, o + 8) + self._al(ln)
                last = x
                j -= 1
            hi = min(hi, lo - A)
        if last >= 0 and not self._newest_ok(base + last):
            # The newest ATE is the only one a cut can have torn: a torn ATE that passed
            # its crc8 (1 in 256) points at data that fails its CRC-32. Zero it (the
            # write it was for never completed) and look again.
            self._f.program(base + last, bytes(A))
            return self._recover()
        if free >= 0 and free < dend:
            free = -1
        full = free < 0
        if full:
            # No erased slot above the data: full, the next write closes the sector at
            # the slot below the newest ATE, as the writer would have (data_wra is set
            # past ate_wra below so that nothing more is written here).
            a = max(0, (last if last >= 0 else top + A) - A)
        else:
            a = free
        # Slots between the newest valid ATE and ate_wra hold a torn ATE: zero it, so
        # it can never read as a damaged record later (an all-zero ATE fails crc8).
        x = (last if last >= 0 else top + A) - A
        ctx[_C_MODE] = 0
        while x > a and x >= dend:
            self._f.read(base + x, self._g)
            ctx[_C_SLOT0] = x
            if _scan(self._g, 0, 1, ctx, self._cache) < 0 and _last_dirty(self._g, A) >= 0 and any(self._g):
                self._f.program(base + x, bytes(A))
            x -= A
        self._checked = full  # free area not yet checked for a torn value (_check_free)
        self._ate_wra = base + a
        self._data_wra = base + (a + A if full else dend)

    def _newest_ok(self, addr):
        """False if the valid ATE at addr is for a value > 8 bytes whose data fails its
        CRC-32; True otherwise (headers, small values and deletes cannot be checked)."""
        g = self._g
        self._f.read(addr, g)
        n = g[2] | g[3] << 8
        if g[4] & g[5] & g[6] & g[7] == 0xFF or n <= _INLINE:
            return True
        data = bytearray(n)
        self._f.read(addr - addr % self._S + _u32(g, 8), data)
        return _data_crc(data) == _u32(g, 12)

    def _check_free(self):
        """Before the first write after a mount: the bytes between data_wra and
        ate_wra must be erased; move data_wra past any left by a torn value."""
        base = self._data_wra - self._data_wra % self._S
        dend = self._data_wra
        end = self._ate_wra
        while end > dend:
            lo = max(dend, end - _CHUNK)
            b = self._bufmv[0 : end - lo]
            self._f.read(lo, b)
            i = _last_dirty(b, end - lo)
            if i >= 0:
                self._data_wra = base + self._al(lo - base + i + 1)
                break
            end = lo
        self._checked = True

    def _gc_done_present(self):
        """Does the open sector hold a valid gc_done ATE above ate_wra?"""
        A = self._A
        base = self._open * self._S
        top = self._S - 3 * A
        ctx = self._ctx
        self._set_ctx(ctx, self._open, 0)
        x = self._ate_wra - base + A
        buf = self._buf
        while x <= top:
            k = min(_CHUNK // A, (top - x) // A + 1)
            self._f.read(base + x, self._bufmv[0 : k * A])
            ctx[_C_SLOT0] = x
            j = 0
            while j < k:
                j = _scan(buf, j, k, ctx, self._cache)
                if j < 0:
                    break
                o = j * A
                if buf[o + 4] & buf[o + 5] & buf[o + 6] & buf[o + 7] == 0xFF and buf[o + 2] == buf[o + 3] == 0:
                    return True
                j += 1
            x += k * A
        return False
