"""Record store on raw flash in the ZMS format (Zephyr Memory Storage, 32-bit IDs).

Key/value records (32-bit id -> 1..max_value_size bytes) are appended to a circular
log of flash sectors, so an update programs one small record and never rewrites
others; a power cut at any point loses at most the operation in progress.

ON-FLASH FORMAT (bit-compatible with upstream ZMS, 32-bit IDs, data CRC on)
=========================================================================
Partition: `sector_count` (>= 2) sectors of `sector_size` bytes, used as a ring.
A = ATE size = 16 bytes rounded up to the flash write block (extra bytes 0xFF).

Sector layout (offsets inside one sector of size S):

    0 ............ data_wra        values longer than 8 bytes, growing upward,
                                   each padded with 0xFF to the write block
    ... free (0xFF) ...
    ate_wra ...... S - 3A          ATEs growing downward, newest at the lowest offset
    S - 2A                         close ATE (written when the sector is closed)
    S - A                          empty ATE (sector header, holds the cycle counter)

The slot at offset 0 never holds an ATE and the slot at offset A only a delete, so a
delete always fits. Largest value: min(65535, S - 5A) bytes.

ATE (Allocation Table Entry), 16 bytes, little-endian:

    0  crc8      CRC-8 over bytes 1..15: poly 0x07, MSB first, init 0xFF, no final xor
    1  cycle     must equal the cycle counter in the sector's empty ATE
    2  len       u16 value length; 0 = delete; 0xFFFF only in the empty ATE
    4  id        u32 record id; 0xFFFFFFFF marks header ATEs
    8  data[8]   the value itself when 1 <= len <= 8 (unused bytes 0)
    8  offset    u32, len > 8: where the value starts in this sector
    12 data_crc  u32, len > 8: CRC-32 (IEEE, as binascii.crc32) of the value

Header ATEs (id 0xFFFFFFFF, valid when their own crc8 matches):

    empty    len 0xFFFF, offset 0, bytes 12..15 = version 1, magic 0x42,
             ATE format 0 (32-bit ids), 0; its cycle is the sector's cycle
    close    len 0, offset = offset of the sector's last ATE, bytes 12..15 0xFF;
             a sector is closed when empty and close ATE are valid, have the same
             cycle, and (S - offset) is a multiple of A
    gc_done  len 0, offset = data_wra when written, bytes 12..15 0xFF; in the ATE
             area, marks that collecting the next sector finished

An ID ATE counts only if its crc8 matches and its cycle equals the sector's. This
reader also requires what every writer guarantees: len <= the largest value, zero
padding after inline data, and for len > 8 an aligned offset whose data ends below
the ATE. Data CRCs are checked on every full read (CorruptError on mismatch).

Cycle counter: erasing a sector and writing its empty ATE sets the cycle to the old
value + 1 (mod 256), skipping the close ATE's value; after a real erase the old
value is gone, so on NOR flash it is 1. It makes stale ATEs invalid on media that
cannot erase; upstream fills unused slots with 0xFF "garbage ATEs" when closing for
the same reason, which on erase-before-write flash is a no-op (the slots are already
0xFF), so this implementation skips those programs; the image is identical.

Write: a value > 8 bytes is programmed at data_wra first, then its ATE: the ATE is
the commit. ATEs are programmed body first (bytes 4.., or 8.. on 8-byte write
blocks) and the crc8/cycle/len head last, so a cut during either half leaves an
invalid ATE (its cycle byte 0xFF or its length impossible). Writing the value a
record already has, or deleting a missing record, programs nothing.

Garbage collection, when the open sector N cannot take a record: close N (close
ATE), move to N+1 (the spare: erase it unless it is erased apart from a valid empty
ATE), then for every valid ATE of the oldest sector N+2, newest first, copy it to N+1
(data, then ATE with N+1's cycle) if it is still the newest ATE of its id and not a
delete. Write a gc_done ATE in N+1, erase N+2 and give it a new empty ATE. The write
retries; after collecting sector_count sectors without room it fails with ENOSPC
(and fails at once while nothing has changed since). One sector is always kept
empty. sector_use_next() does the same on demand.

Mount and recovery: find a closed sector followed by one that is not: that one is
open (no closed sector at all: sector 0, or the last sector if its first ATE slot
holds a valid ATE); an open sector without a valid empty ATE is erased and gets
one (nothing in it could be valid). Scan its ATE slots from the top down, to the
first erased slot or the data end: the lowest valid ATE is the newest; the end of
the newest value gives data_wra; ate_wra is the first erased slot (none: the sector
is full and the next write closes it). If the sector after the open one is closed, a
collection was interrupted: with a gc_done ATE present only that sector is erased
again, otherwise the open sector is erased and the collection rerun. An empty open
sector gets a gc_done ATE. Extensions for NOR flash, invisible to other readers:
  * torn value: before the first write after a mount, data_wra moves past any
    non-erased byte between it and ate_wra (what a cut value write leaves);
  * torn ATE: slots between the newest valid ATE and ate_wra (a cut ATE write) are
    programmed to zeros, which no reader accepts (crc8 of zeros is 0x90);
  * torn close: a non-erased close slot in the open sector means a cut while
    closing it; the same close ATE is programmed again (it lands on the same bytes)
    and the mount starts over, which then finds and reruns the collection.
Damage (not power loss) is survived where the format allows: a sector with a valid
close ATE counts as closed even if its empty ATE is damaged; a close ATE that cannot
be reprogrammed is taken as closed at the recovered offset; an open sector with a
damaged empty ATE takes the cycle of its first-slot gc_done ATE; a garbage (or
erased) sector inside the log counts as a closed sector holding nothing. A read
whose newest ATE for the id is neither valid, erased nor zeroed raises CorruptError
instead of returning an older value (writing the id heals it); damage to an ATE's
id bytes, or a lost sector, can still bring back an older value of a record.
A mount of a clean image reads only the sector headers and the open sector's ATE
area and programs nothing. A flash without any ZMS header is formatted.

Lookup cache (RAM only): `lookup_cache` slots of 4 bytes, slot = hash(id) &
(size - 1), each the address of the newest ATE written for an id hashing there (0 =
none, since offset 0 never holds an ATE); reads walk backward from it. It is built
on first use after a mount (or by the first ids()) in one pass over all ATEs.
hash: x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16
(all mod 2**32).
"""
import micropython
from micropython import const
from array import array

try:
    from binascii import crc32 as _crc32
except ImportError:
    _crc32 = None

ENOSPC = const(28)  # errno of OSError when the store is full (errno.ENOSPC on Linux/newlib)
_EIO = const(5)

_ATE = const(16)
_INLINE = const(8)  # values up to this size live inside their ATE
_HEAD = const(0xFFFFFFFF)
_VERSION = const(1)
_MAGIC = const(0x42)
_CHUNK = const(256)  # bytes of ATE slots read per flash access; a multiple of A

# Layout of the int32 context array handed to _scan.
_C_MODE = const(0)  # 0 next valid ATE, 1 find id, 2 fill the lookup cache
_C_CYC = const(1)
_C_SLOT0 = const(2)  # sector offset of the first slot in the buffer
_C_A = const(3)
_C_MAXLEN = const(4)
_C_WBM = const(5)  # write_block - 1
_C_BASE = const(6)  # flash offset of the sector
_C_MASK = const(7)  # lookup cache slots - 1
_C_IDLO = const(8)
_C_IDHI = const(9)
_C_HIT = const(10)  # out: what mode 0/4 stopped at; mode 3 entry count

# State flags per sector in _sec (4 bytes per sector: cycle, flags, close offset // A).
_F_EMPTY = const(1)  # has a valid empty ATE of our format
_F_CLOSED = const(2)

# CRC-8 (poly 0x07) of each byte value: crc = _CRC8[crc ^ byte]
_CRC8 = (
    b"\x00\x07\x0e\x09\x1c\x1b\x12\x15\x38\x3f\x36\x31\x24\x23\x2a\x2d"
    b"\x70\x77\x7e\x79\x6c\x6b\x62\x65\x48\x4f\x46\x41\x54\x53\x5a\x5d"
    b"\xe0\xe7\xee\xe9\xfc\xfb\xf2\xf5\xd8\xdf\xd6\xd1\xc4\xc3\xca\xcd"
    b"\x90\x97\x9e\x99\x8c\x8b\x82\x85\xa8\xaf\xa6\xa1\xb4\xb3\xba\xbd"
    b"\xc7\xc0\xc9\xce\xdb\xdc\xd5\xd2\xff\xf8\xf1\xf6\xe3\xe4\xed\xea"
    b"\xb7\xb0\xb9\xbe\xab\xac\xa5\xa2\x8f\x88\x81\x86\x93\x94\x9d\x9a"
    b"\x27\x20\x29\x2e\x3b\x3c\x35\x32\x1f\x18\x11\x16\x03\x04\x0d\x0a"
    b"\x57\x50\x59\x5e\x4b\x4c\x45\x42\x6f\x68\x61\x66\x73\x74\x7d\x7a"
    b"\x89\x8e\x87\x80\x95\x92\x9b\x9c\xb1\xb6\xbf\xb8\xad\xaa\xa3\xa4"
    b"\xf9\xfe\xf7\xf0\xe5\xe2\xeb\xec\xc1\xc6\xcf\xc8\xdd\xda\xd3\xd4"
    b"\x69\x6e\x67\x60\x75\x72\x7b\x7c\x51\x56\x5f\x58\x4d\x4a\x43\x44"
    b"\x19\x1e\x17\x10\x05\x02\x0b\x0c\x21\x26\x2f\x28\x3d\x3a\x33\x34"
    b"\x4e\x49\x40\x47\x52\x55\x5c\x5b\x76\x71\x78\x7f\x6a\x6d\x64\x63"
    b"\x3e\x39\x30\x37\x22\x25\x2c\x2b\x06\x01\x08\x0f\x1a\x1d\x14\x13"
    b"\xae\xa9\xa0\xa7\xb2\xb5\xbc\xbb\x96\x91\x98\x9f\x8a\x8d\x84\x83"
    b"\xde\xd9\xd0\xd7\xc2\xc5\xcc\xcb\xe6\xe1\xe8\xef\xfa\xfd\xf4\xf3"
)


class CorruptError(OSError):
    """errno EIO: the flash holds no usable ZMS partition, or a record failed its CRC."""


def _corrupt(msg):
    return CorruptError(_EIO, msg)


# ---- hot paths: viper, each with its plain-Python reference beside it ----


def _crc8_ref(buf, start, end):
    c = 0xFF
    for i in range(start, end):
        c ^= buf[i]
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


@micropython.viper
def _crc8(buf: ptr8, start: int, end: int) -> int:
    t = ptr8(_CRC8)
    c = 0xFF
    i = start
    while i < end:
        c = t[c ^ buf[i]]
        i += 1
    return c


def _hash_ref(x):
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def _slot_ref(ident, mask):
    return _hash_ref(ident) & mask


# Lookup-cache slot of an id: hash(id) & mask. Constants above 2**30 are built from
# 16-bit halves (big literals are objects in viper on 32-bit boards), and every
# product is masked to 32 bits so 32- and 64-bit machines agree.
@micropython.viper
def _slot(ident: uint, mask: int) -> int:
    m32 = (uint(0xFFFF) << 16) | uint(0xFFFF)
    x = ident & m32
    x = x ^ (x >> 16)
    x = (x * ((uint(0x7FEB) << 16) | uint(0x352D))) & m32
    x = x ^ (x >> 15)
    x = (x * ((uint(0x846C) << 16) | uint(0xA68B))) & m32
    x = x ^ (x >> 16)
    return int(x & uint(mask))


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
                table[s] = ctx[_C_BASE] + ctx[_C_SLOT0] + o
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


# Walk ATE slots j, j±1, ... (to `end`, exclusive) of a buffer read from flash.
# Valid: crc8, cycle == ctx[CYC] and the sanity rules in FORMAT. "Damaged": not
# valid, yet neither erased nor zeroed (a torn ATE that recovery has not zeroed).
#   mode 0: index of the first valid ATE (header or not); ctx[HIT] = 1.
#   mode 1: index of the first ATE with id ctx[IDHI]:ctx[IDLO] that is valid
#           (ctx[HIT] = 1) or damaged (3); the CRC is computed for matching ids only.
#   mode 2: lookup cache fill, `table` = cache: an empty cache slot takes the address
#           of the first ATE, valid or damaged, whose id hashes to it; returns -1.
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
            x = x ^ (x >> 16)
            x = (x * ((uint(0x7FEB) << 16) | uint(0x352D))) & m32
            x = x ^ (x >> 15)
            x = (x * ((uint(0x846C) << 16) | uint(0xA68B))) & m32
            x = x ^ (x >> 16)
            s = int(x & uint(mask))
            if mode == 2:
                if table[s] == 0:
                    i = o
                    while i < o + 16 and buf[i] == 0:
                        i += 1
                    if i < o + 16:
                        table[s] = ctx[6] + slot0 + o
                continue
            while table[2 * s + 1] != 0 and (uint(table[2 * s]) & m32) != xid:
                s = (s + 1) & mask
            if table[2 * s + 1] != 0:
                continue
        ok = buf[o + 1] == cyc
        n = buf[o + 2] | (buf[o + 3] << 8)
        if ok:
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


def _compact_ref(t, n):
    # Move the ids of the live entries (len + 1 > 1) of an n-entry id table to t[0:k]; k.
    k = 0
    for i in range(n):
        if t[2 * i + 1] > 1:
            t[k] = t[2 * i]
            k += 1
    return k


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


@micropython.viper
def _header(b: ptr8, a: int, size: int) -> int:
    t = ptr8(_CRC8)
    # the close ATE: its slot index, or -1
    close = -1
    if b[2] == 0 and b[3] == 0 and (b[4] & b[5] & b[6] & b[7]) == 0xFF and b[11] == 0:
        off = b[8] | (b[9] << 8) | (b[10] << 16)
        if off >= a and off <= size - 3 * a and (size - off) % a == 0:
            c = 0xFF
            i = 1
            while i < 16:
                c = t[c ^ b[i]]
                i += 1
            if c == b[0]:
                close = off // a
    e = a
    ok = (b[e + 2] & b[e + 3] & b[e + 4] & b[e + 5] & b[e + 6] & b[e + 7]) == 0xFF
    if ok:
        c = 0xFF
        i = e + 1
        while i < e + 16:
            c = t[c ^ b[i]]
            i += 1
        ok = c == b[e]
    if not ok:
        if close < 0:
            return -1
        return b[1] | 0x200 | (close << 16)
    if b[e + 14] & 0x0F:
        if b[e + 13] == 0x42:
            return -2
        return -1
    if b[e + 13] == 0x42 and b[e + 12] != 1:
        return -3
    cyc = b[e + 1]
    if b[1] == cyc and close >= 0:
        return cyc | 0x300 | (close << 16)
    return cyc | 0x100


def _last_dirty_ref(buf, n):
    for i in range(n - 1, -1, -1):
        if buf[i] != 0xFF:
            return i
    return -1


@micropython.viper
def _last_dirty(buf: ptr8, n: int) -> int:
    """Index of the last byte of buf[:n] that is not erased (0xFF), or -1."""
    i = n - 1
    while i >= 0:
        if buf[i] != 0xFF:
            return i
        i -= 1
    return -1


def _crc32_ref(buf, n, crc):
    c = crc ^ 0xFFFFFFFF
    for i in range(n):
        c ^= buf[i]
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


# CRC-32 for ports whose binascii lacks crc32.
@micropython.viper
def _crc32_soft(buf: ptr8, n: int, crc: uint) -> uint:
    m32 = (uint(0xFFFF) << 16) | uint(0xFFFF)
    poly = (uint(0xEDB8) << 16) | uint(0x8320)
    c = (crc ^ m32) & m32
    i = 0
    while i < n:
        c = c ^ uint(buf[i])
        k = 0
        while k < 8:
            if c & 1:
                c = (c >> 1) ^ poly
            else:
                c = c >> 1
            k += 1
        i += 1
    return (c ^ m32) & m32


def _data_crc(mv):
    return _crc32(mv) if _crc32 else _crc32_soft(mv, len(mv), 0)


def _u32(buf, o):
    return buf[o] | buf[o + 1] << 8 | buf[o + 2] << 16 | buf[o + 3] << 24


def _put32(buf, o, v):
    buf[o] = v & 0xFF
    buf[o + 1] = (v >> 8) & 0xFF
    buf[o + 2] = (v >> 16) & 0xFF
    buf[o + 3] = (v >> 24) & 0xFF


def _check_id(ident):
    if not isinstance(ident, int):
        raise TypeError("id must be an int, not %s" % type(ident).__name__)
    if not 0 <= ident <= 0xFFFFFFFE:
        raise ValueError("id must be in 0..0xFFFFFFFE, got %r" % ident)


class ZMS:
    """A mounted ZMS partition on `flash` (see flash.py); mounting (with recovery
    after a power cut) happens here, and may program/erase to finish what a cut
    interrupted. `sector_count` defaults to all of the flash; `lookup_cache` is the
    number of RAM cache slots (0 or a power of two, 4 bytes each).

    Raises CorruptError (an OSError, errno EIO) when the flash holds a ZMS partition
    this code cannot use (another format version or ATE format, every sector
    closed, a damaged sector header). A flash without any ZMS header is formatted.
    If a flash operation fails midway (OSError), the next call mounts again first.
    RAM: buffers of about 0.35 KB plus 4 bytes per lookup_cache slot, whatever the
    number of records (the whole object: 1.6 KB on the 64-bit unix port with the
    default cache).
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
        self._wb = wb
        self.max_value_size = min(0xFFFF, S - 5 * A)
        self._sec = bytearray(4 * n)
        self._ate = bytearray(A)
        self._g = bytearray(A)
        self._buf = bytearray(_CHUNK)
        self._bufmv = memoryview(self._buf)
        split = max(4, wb)
        am = memoryview(self._ate)
        self._head = am[0:split] if split < A else None
        self._body = am[split:A] if split < A else am
        self._cache = array("i", [0] * max(1, lookup_cache))
        self._cached = lookup_cache > 0
        self._nids = -1  # ids seen by the last _table() walk
        self._damaged = False
        self._use_cache = False
        ctx = array("i", [0] * 11)
        ctx[_C_A] = A
        ctx[_C_MAXLEN] = self.max_value_size
        ctx[_C_WBM] = wb - 1
        ctx[_C_MASK] = max(1, lookup_cache) - 1
        self._ctx = ctx
        self._gctx = array("i", ctx)
        self._mount()

    # ---- public API ----

    def read(self, ident, buf=None):
        """The value of record `ident` as bytes, or None if there is none. With `buf`,
        the value is copied into it and its length returned (None if absent);
        ValueError if buf is too small. CorruptError if the value fails its CRC."""
        self._ready()
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
            self._f.read(addr - addr % self._S + _u32(ate, 8), dst)
            if _data_crc(dst) != _u32(ate, 12):
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

    # ---- sector bookkeeping ----

    def _al(self, n):
        return (n + self._wb - 1) & ~(self._wb - 1)

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
        if h == -2:
            raise _corrupt("sector %d: ATE format %d not supported (only 32-bit ids)" % (s, b[A + 14] & 0x0F))
        if h == -3:
            raise _corrupt("sector %d: ZMS version %d not supported" % (s, b[A + 12]))
        sec = self._sec
        if h < 0:
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
            lo = s * S
            for i in range(len(c)):
                if lo <= c[i] < lo + S:
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
        if self._head is None:
            self._f.program(addr, self._body)
        else:
            sp = len(self._head)
            self._f.program(addr + sp, self._body)
            self._f.program(addr, self._head)

    def _append_ate(self, ident):
        """Program _ate at ate_wra and move ate_wra down; ident None for headers."""
        self._put_ate(self._ate_wra)
        if ident is not None and self._cached:
            self._cache[_slot(ident, len(self._cache) - 1)] = self._ate_wra
        self._ate_wra -= self._A

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
        for s in range(n):
            self._load_header(s)
            if s in closes:  # found closed, or garbage, by an earlier pass (below)
                off = closes[s]
                self._sec[4 * s + 1] |= _F_CLOSED
                self._sec[4 * s + 2] = off & 0xFF
                self._sec[4 * s + 3] = off >> 8
            if self._closed(s):
                closed += 1
        if closed == n:
            raise _corrupt("all %d sectors are closed: no open sector to write" % n)
        op = -1
        for s in range(n):
            if self._closed(s) and not self._closed((s + 1) % n):
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
            if _crc8(g, 1, 16) == g[0] and g[4] & g[5] & g[6] & g[7] == 0xFF and g[2] | g[3] == 0:
                self._sec[4 * op] = g[1]
                self._sec[4 * op + 1] = _F_EMPTY
            elif not any(self._sec[4 * s + 1] for s in range(n)) or (
                self._clean(op) and not self._in_use((op + 1) % n)
            ):
                self._format_sector(op)  # no ZMS header anywhere, or cut while formatting
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
            self._close()
            self._load_header(op)
            if not self._closed(op):
                closes[op] = (self._ate_wra - op * S + A) // A
            return self._mount(closes)
        if self._ate_wra == self._open * S + top:
            self._header_ate(self._data_wra - self._open * S)
            self._append_ate(None)
        self._dirty = False

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
        if free >= 0 and free < dend:
            free = -1
        if free < 0:
            # No erased slot above the data: full, the next write closes the sector.
            a = (last if last >= 0 else top + A) - A
            while a >= dend and a > 0:
                a -= A
            a = max(0, a)
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
            if free < 0:
                break  # a full sector: below the torn slot lies the value it was for
        self._checked = free < 0  # free area not yet checked for a torn value (_check_free)
        self._ate_wra = base + a
        self._data_wra = base + dend

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
            t = array("i", [0] * (2 * size))
            if self._walk(t):
                self._nids = self._ctx[_C_HIT]
                return t
            size *= 4

    def _lookup(self, ident):
        """Address of the newest ATE of ident (left in _ate; see _find), or -1."""
        if self._cached:
            if not self._use_cache:
                self._walk(None)  # the cache is built on first use after a mount
            start = self._cache[_slot(ident, len(self._cache) - 1)]
            if start == 0:
                return -1
        else:
            start = self._ate_wra + self._A  # the newest ATE slot (ate_wra itself is free)
        return self._find(ident, start)

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
                k = min(k, (top - x) // A + 1)
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
        body = n & ~(self._wb - 1)
        if body:
            self._f.program(self._data_wra, mv[0:body])
        rest = n - body
        if rest:
            b = self._buf
            for i in range(rest):
                b[i] = mv[body + i]
            for i in range(rest, self._wb):
                b[i] = 0xFF
            self._f.program(self._data_wra + body, self._bufmv[0 : self._wb])
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
        """Prepare the new open sector and collect the one after it (see FORMAT)."""
        S = self._S
        A = self._A
        s = self._open
        if not (self._sec[4 * s + 1] & _F_EMPTY and self._clean(s)):
            self._format_sector(s)
        self._cycle = self._sec[4 * s]
        g = (s + 1) % self._n
        if self._closed(g):
            gbase = g * S
            top = S - 3 * A
            ctx = self._gctx
            self._set_ctx(ctx, g, 0)
            gate = self._g
            x = self._close_off(g)
            while x <= top:
                self._f.read(gbase + x, gate)
                ctx[_C_SLOT0] = x
                if (
                    _scan(gate, 0, 1, ctx, self._cache) == 0
                    and gate[4] & gate[5] & gate[6] & gate[7] != 0xFF
                    and gate[2] | gate[3]
                ):
                    ident = _u32(gate, 4)
                    if self._lookup(ident) == gbase + x:
                        self._copy(ident, gbase)
                x += A
        self._header_ate(self._data_wra - s * S)
        self._append_ate(None)
        self._format_sector(g)

    def _copy(self, ident, gbase):
        """Copy the ATE in _g (and its data) from sector gbase to the open sector."""
        ate = self._ate
        ate[:] = self._g
        n = ate[2] | ate[3] << 8
        if n > _INLINE:
            src = gbase + _u32(ate, 8)
            dst = self._data_wra
            _put32(ate, 8, dst - self._open * self._S)
            total = self._al(n)
            done = 0
            while done < total:
                k = min(_CHUNK, total - done)
                b = self._bufmv[0:k]
                self._f.read(src + done, b)
                if done + k > n:  # padding after the value is written as 0xFF
                    for i in range(n - done, k):
                        b[i] = 0xFF
                self._f.program(dst + done, b)
                done += k
            self._data_wra += total
        ate[1] = self._cycle
        ate[0] = _crc8(ate, 1, 16)
        self._append_ate(ident)
