"""ZMS garbage collection, loaded at the first sector change (docs/ZMS.md, "GC"): the new
open sector is made ready and the sector after it, the oldest, is collected (each live
entry copied to the open sector, newest first as found by the lookup) before it is
erased. `z` is the mounted store (zms.ZMS); its log methods do the flash work.
"""
from micropython import const
from array import array
from .zms_fmt import _crc8, _put32, _u32
from .zms_scan import _scan

# Copies of zms_fmt's private constants (const() names starting with _ are not exported).
_INLINE = const(8)
_CHUNK = const(256)
_C_SLOT0 = const(2)
_F_EMPTY = const(1)


def gc(z):
    """Prepare the new open sector and collect the one after it (see FORMAT)."""
    S = z._S
    A = z._A
    s = z._open
    if not (z._sec[4 * s + 1] & _F_EMPTY and z._clean(s)):
        z._format_sector(s)
    z._cycle = z._sec[4 * s]
    g = (s + 1) % z._n
    if z._closed(g):
        gbase = g * S
        top = S - 3 * A
        ctx = array("i", z._ctx)  # (a copy: lookups during the copy use z._ctx)
        z._set_ctx(ctx, g, 0)
        gate = z._g
        x = z._close_off(g)
        while x <= top:
            z._f.read(gbase + x, gate)
            ctx[_C_SLOT0] = x
            if (
                _scan(gate, 0, 1, ctx, z._cache) == 0
                and gate[4] & gate[5] & gate[6] & gate[7] != 0xFF
                and gate[2] | gate[3]
            ):
                ident = _u32(gate, 4)
                if z._lookup(ident) == gbase + x:
                    _copy(z, ident, gbase)
            x += A
    z._header_ate(z._data_wra - s * S)
    z._append_ate(None)
    z._format_sector(g)

def _copy(z, ident, gbase):
    """Copy the ATE in _g (and its data) from sector gbase to the open sector."""
    ate = z._ate
    ate[:] = z._g
    n = ate[2] | ate[3] << 8
    if n > _INLINE:
        src = gbase + _u32(ate, 8)
        dst = z._data_wra
        _put32(ate, 8, dst - z._open * z._S)
        total = z._al(n)
        done = 0
        while done < total:
            k = min(_CHUNK, total - done)
            b = z._bufmv[0:k]
            z._f.read(src + done, b)
            if done + k > n:  # padding after the value is written as 0xFF
                for i in range(n - done, k):
                    b[i] = 0xFF
            z._f.program(dst + done, b)
            done += k
        z._data_wra += total
    ate[1] = z._cycle
    ate[0] = _crc8(ate, 1, 16)
    z._append_ate(ident)
