"""ZMS hot paths: the viper ATE scanner, lookup-cache slot and id-table compaction."""
import micropython
from .zms_fmt import _CRC8


# Lookup-cache slot of an id: (11 * low half + 2 * high half) & mask, not a mixing
# hash. The Peer Manager's ids are peer << 16 | data: one record type of up to size/2
# peers never collides, nor do an odd and an even data id, so with 64 slots every
# PEER_SEC (7) and OUR_SEC (16) of 32 peers hits (NimBLE reads each PEER_SEC at every
# activation); the 11 keeps a peer's rank, CCCDs and secrets (6, 8, 7, 16) clear of
# each other's for up to 8 peers. Sequential ids get distinct slots. RAM only: the
# format does not depend on it (Zephyr's ZMS has a settings-specific one too).
@micropython.viper
def _slot(ident: uint, mask: int) -> int:
    return int(((ident & uint(0xFFFF)) * 11 + ((ident >> 16) & uint(0xFFFF)) * 2) & uint(mask))


# Walk ATE slots j, j±1, ... (to `end`, exclusive) of a buffer read from flash.
# Valid: crc8, cycle == ctx[CYC] and the sanity rules in FORMAT. "Damaged": not
# valid, yet neither erased nor zeroed (a torn ATE that recovery has not zeroed).
#   mode 0: index of the first valid ATE (header or not); ctx[HIT] = 1.
#   mode 1: index of the first ATE with id ctx[IDHI]:ctx[IDLO] that is valid
#           (ctx[HIT] = 1) or damaged (3); the CRC is computed for matching ids only.
#   mode 2: lookup cache fill, `table` = cache (uint16): an empty cache slot takes the
#           address >> 4 of the first ATE, valid or damaged, whose id maps to it;
#           returns -1.
#   mode 3: id table fill, `table` = 2 int32 per entry (id, len + 1; 0 = free),
#           open addressing: the first valid ATE of each id is recorded (ATEs of an
#           id already recorded are skipped unchecked), ctx[HIT] counts entries;
#           returns -1, or -2 once the table is half full.
#   mode 4: index of the first slot that is valid (ctx[HIT] = 1) or erased (2).
@micropython.viper
def _scan(buf: ptr8, j: int, end: int, ctx: ptr32, table: ptr32) -> int:
    t = ptr8(_CRC8)
    mode = ctx[0]
    cyc = ctx[1]
    slot0 = ctx[2]
    a = ctx[3]
    maxlen = ctx[4]
    wbm = ctx[5]
    mask = ctx[7]
    m32 = (uint(0xFFFF) << 16) | uint(0xFFFF)
    d = 1
    if end < j:
        d = -1
    while j != end:
        o = j * a
        j += d
        if mode == 4:
            i = o
            while i < o + a and buf[i] == 0xFF:
                i += 1
            if i == o + a:
                ctx[10] = 2
                return j - d
        head = (buf[o + 4] & buf[o + 5] & buf[o + 6] & buf[o + 7]) == 0xFF
        if mode == 1:
            if head or (buf[o + 4] | (buf[o + 5] << 8)) != ctx[8] or (buf[o + 6] | (buf[o + 7] << 8)) != ctx[9]:
                continue
        s = 0
        if mode == 2 or mode == 3:
            if head or (mode == 3 and buf[o + 1] != cyc):
                continue
            x = uint(buf[o + 4]) | (uint(buf[o + 5]) << 8) | (uint(buf[o + 6]) << 16) | (uint(buf[o + 7]) << 24)
            xid = x
            s = int(((x & uint(0xFFFF)) * 11 + ((x >> 16) & uint(0xFFFF)) * 2) & uint(mask))  # _slot
            if mode == 2:
                c16 = ptr16(table)
                if c16[s] == 0:
                    i = o
                    while i < o + 16 and buf[i] == 0:
                        i += 1
                    if i < o + 16:
                        c16[s] = (ctx[6] + slot0 + o) >> 4
                continue
            while table[2 * s + 1] != 0 and (uint(table[2 * s]) & m32) != xid:
                s = (s + 1) & mask
            if table[2 * s + 1] != 0:
                continue
        ok = buf[o + 1] == cyc
        n = buf[o + 2] | (buf[o + 3] << 8)
        if ok:  # the ATE's CRC-8, inlined: in viper a call per ATE costs more than the loop
            c = 0xFF
            i = o + 1
            while i < o + 16:
                c = t[c ^ buf[i]]
                i += 1
            ok = c == buf[o]
        if ok and not head:
            if n > maxlen:
                ok = False
            elif n > 8:
                off = buf[o + 8] | (buf[o + 9] << 8) | (buf[o + 10] << 16)
                if buf[o + 11] != 0 or (off & wbm) != 0 or off + n > slot0 + o:
                    ok = False
            else:
                i = o + 8 + n
                while i < o + 16:
                    if buf[i] != 0:
                        ok = False
                    i += 1
        if mode == 1:
            if ok:
                ctx[10] = 1
                return j - d
            i = o
            while i < o + 16 and buf[i] == 0:
                i += 1
            if i < o + 16:
                ctx[10] = 3
                return j - d
        elif ok:
            if mode != 3:
                ctx[10] = 1
                return j - d
            table[2 * s] = int(xid)
            table[2 * s + 1] = n + 1
            ctx[10] += 1
            if ctx[10] * 2 > mask:
                return -2
    return -1


@micropython.viper
def _compact(t: ptr32, n: int) -> int:
    k = 0
    i = 0
    while i < n:
        if t[2 * i + 1] > 1:
            t[k] = t[2 * i]
            k += 1
        i += 1
    return k
