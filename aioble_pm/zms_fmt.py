"""ZMS format: constants, CRCs, sector-header decoding and small codecs (see docs/ZMS.md)."""
import micropython
from micropython import const

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




@micropython.viper
def _crc8(buf: ptr8, start: int, end: int) -> int:
    t = ptr8(_CRC8)
    c = 0xFF
    i = start
    while i < end:
        c = t[c ^ buf[i]]
        i += 1
    return c


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
    if ok:  # the ATE's CRC-8, inlined: in viper a call per ATE costs more than the loop
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


@micropython.viper
def _last_dirty(buf: ptr8, n: int) -> int:
    """Index of the last byte of buf[:n] that is not erased (0xFF), or -1."""
    i = n - 1
    while i >= 0:
        if buf[i] != 0xFF:
            return i
        i -= 1
    return -1


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


@micropython.viper
def _crc_at(buf: ptr8, o: int, crc: uint) -> bool:
    """Does the u32 LE at buf[o] equal crc? (No int object: on 32-bit ports a CRC
    above 2**30 is a heap-allocated long.)"""
    v = uint(buf[o]) | (uint(buf[o + 1]) << 8) | (uint(buf[o + 2]) << 16) | (uint(buf[o + 3]) << 24)
    return v == crc & ((uint(0xFFFF) << 16) | uint(0xFFFF))


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


# The names the peer database (peers.py), the one user outside the store, seals with.
corrupt = _corrupt
data_crc = _data_crc
