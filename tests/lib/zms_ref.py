# Plain-Python reference implementations (test oracles) of the viper hot paths in
# aioble_pm/zms_*.py and flash.py; mp_zms_viper.py and mp_flash.py check the viper code
# against them on random inputs. Constants: the same values as zms_fmt.
_INLINE = 8
_MAGIC = 0x42
_VERSION = 1
_F_EMPTY = 1
_F_CLOSED = 2
_C_MODE = 0
_C_CYC = 1
_C_SLOT0 = 2
_C_A = 3
_C_MAXLEN = 4
_C_WBM = 5
_C_BASE = 6
_C_MASK = 7
_C_IDLO = 8
_C_IDHI = 9
_C_HIT = 10


def _crc8_ref(buf, start, end):
    c = 0xFF
    for i in range(start, end):
        c ^= buf[i]
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def _slot_ref(ident, mask):
    return ((ident & 0xFFFF) * 11 + (ident >> 16) * 2) & mask


def _ate_ok_ref(buf, o, ctx, slot):
    # Is the ATE at buf[o:o+16], sitting at sector offset `slot`, valid? 2 header, 1 ID ATE, 0 no.
    if buf[o + 1] != ctx[_C_CYC] or _crc8_ref(buf, o + 1, o + 16) != buf[o]:
        return 0
    if buf[o + 4] & buf[o + 5] & buf[o + 6] & buf[o + 7] == 0xFF:
        return 2
    n = buf[o + 2] | buf[o + 3] << 8
    if n > ctx[_C_MAXLEN]:
        return 0
    if n > _INLINE:
        off = buf[o + 8] | buf[o + 9] << 8 | buf[o + 10] << 16
        return int(buf[o + 11] == 0 and off & ctx[_C_WBM] == 0 and off + n <= slot)
    for i in range(o + 8 + n, o + 16):
        if buf[i]:
            return 0
    return 1


def _scan_ref(buf, j, end, ctx, table):
    a = ctx[_C_A]
    d = 1 if end > j else -1
    mode = ctx[_C_MODE]
    mask = ctx[_C_MASK]
    while j != end:
        o = j * a
        if mode == 4 and all(buf[i] == 0xFF for i in range(o, o + a)):
            ctx[_C_HIT] = 2
            return j
        ident = buf[o + 4] | buf[o + 5] << 8 | buf[o + 6] << 16 | buf[o + 7] << 24
        head = ident == 0xFFFFFFFF
        zero = not any(buf[o : o + 16])
        signed = ident - (1 << 32) if ident >> 31 else ident  # as an int32 table holds it
        s = _slot_ref(ident, mask)
        j += d
        if mode == 1 and (head or ident & 0xFFFF != ctx[_C_IDLO] or ident >> 16 != ctx[_C_IDHI]):
            continue
        if mode == 2:
            if not head and not zero and not table[s]:
                table[s] = ((ctx[_C_BASE] + ctx[_C_SLOT0] + o) >> 4) & 0xFFFF  # 16-byte units, u16
            continue
        if mode == 3:
            if buf[o + 1] != ctx[_C_CYC]:
                continue
            while table[2 * s + 1] and table[2 * s] != signed:
                s = (s + 1) & mask
            if table[2 * s + 1]:
                continue
        kind = _ate_ok_ref(buf, o, ctx, ctx[_C_SLOT0] + o)
        if mode == 1:
            if kind == 1 or not zero:
                ctx[_C_HIT] = 1 if kind == 1 else 3
                return j - d
        elif kind and mode != 3:
            ctx[_C_HIT] = 1
            return j - d
        elif kind == 1 and mode == 3:
            table[2 * s] = signed
            table[2 * s + 1] = (buf[o + 2] | buf[o + 3] << 8) + 1
            ctx[_C_HIT] += 1
            if ctx[_C_HIT] * 2 > mask:
                return -2
    return -1


def _compact_ref(t, n):
    # Move the ids of the live entries (len + 1 > 1) of an n-entry id table to t[0:k]; k.
    k = 0
    for i in range(n):
        if t[2 * i + 1] > 1:
            t[k] = t[2 * i]
            k += 1
    return k


def _close_ok_ref(b, a, size):
    off = b[8] | b[9] << 8 | b[10] << 16 | b[11] << 24
    if (b[2] == 0 and b[3] == 0 and b[4] & b[5] & b[6] & b[7] == 0xFF and _crc8_ref(b, 1, 16) == b[0]
            and a <= off <= size - 3 * a and (size - off) % a == 0):
        return off // a
    return -1


def _header_ref(b, a, size):
    # Sector header from b = close ATE (b[0:16]) + empty ATE (b[a:a+16]):
    # -1 no header, -2 unknown ATE format, -3 other version (both with the ZMS
    # magic), else cycle | flags << 8 | (close offset // a) << 16. A valid close ATE
    # makes the sector closed even when the empty ATE is damaged (cycle from the close).
    e = a
    if b[e + 2] & b[e + 3] & b[e + 4] & b[e + 5] & b[e + 6] & b[e + 7] != 0xFF or _crc8_ref(b, e + 1, e + 16) != b[e]:
        c = _close_ok_ref(b, a, size)
        return -1 if c < 0 else b[1] | _F_CLOSED << 8 | c << 16
    if b[e + 14] & 0x0F:
        return -2 if b[e + 13] == _MAGIC else -1
    if b[e + 13] == _MAGIC and b[e + 12] != _VERSION:
        return -3
    cyc = b[e + 1]
    c = _close_ok_ref(b, a, size)
    if b[1] == cyc and c >= 0:
        return cyc | (_F_EMPTY | _F_CLOSED) << 8 | c << 16
    return cyc | _F_EMPTY << 8


def _last_dirty_ref(buf, n):
    for i in range(n - 1, -1, -1):
        if buf[i] != 0xFF:
            return i
    return -1


def _crc32_ref(buf, n, crc):
    c = crc ^ 0xFFFFFFFF
    for i in range(n):
        c ^= buf[i]
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


# dst[doff + i] &= src[i] for i < n; returns how many bytes could not take the new
# value because a bit would have had to go from 0 to 1 (flash._nor).
def _nor_ref(dst, doff, src, n):
    bad = 0
    for i in range(n):
        old = dst[doff + i]
        new = src[i]
        if old & new != new:
            bad += 1
        dst[doff + i] = old & new
    return bad
