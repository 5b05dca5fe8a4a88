"""Frames of the multi-process air (shared by MicroPython devices and the CPython hub).

Frame: u16 length (LE) of the rest, then header u32 src, u32 dst, u8 kind, then the
body: one encoded value. Values: None, bool, int (signed 64-bit), bytes, str, list.
dst 0 = every process. The hub reads only the header.
"""
import struct

ADV = 1  # body: advertising state of src (see air.Air.adv_state)
GONE = 2  # sent by the hub: device src left the air (its process ended)
MSG = 3  # body: [op, args...] for device dst

_HDR = "<IIB"
HDR_LEN = 9


def _enc(v, out):
    if v is None:
        out.append(0)
    elif v is False:
        out.append(1)
    elif v is True:
        out.append(2)
    elif isinstance(v, int):
        out.append(3)
        out.extend(struct.pack("<q", v))
    elif isinstance(v, (bytes, bytearray, memoryview)):
        out.append(4)
        out.extend(struct.pack("<H", len(v)))
        out.extend(bytes(v))
    elif isinstance(v, str):
        b = v.encode()
        out.append(5)
        out.extend(struct.pack("<H", len(b)))
        out.extend(b)
    elif isinstance(v, (list, tuple)):
        out.append(6)
        out.extend(struct.pack("<H", len(v)))
        for x in v:
            _enc(x, out)
    else:
        raise TypeError("wire: cannot encode %s" % type(v).__name__)


def _dec(b, i):
    t = b[i]
    i += 1
    if t < 3:
        return (None, False, True)[t], i
    if t == 3:
        return struct.unpack("<q", b[i : i + 8])[0], i + 8
    n = b[i] | b[i + 1] << 8
    i += 2
    if t == 4:
        return bytes(b[i : i + n]), i + n
    if t == 5:
        return str(bytes(b[i : i + n]), "utf-8"), i + n
    if t == 6:
        items = []
        for _ in range(n):
            v, i = _dec(b, i)
            items.append(v)
        return items, i
    raise ValueError("wire: bad tag %d" % t)


def frame(src, dst, kind, body):
    out = bytearray(struct.pack(_HDR, src, dst, kind))
    _enc(body, out)
    return struct.pack("<H", len(out)) + bytes(out)


def header(payload):
    """(src, dst, kind) of a frame payload (without its length prefix)."""
    return struct.unpack(_HDR, payload[:HDR_LEN])


def body(payload):
    return _dec(payload, HDR_LEN)[0]


def split(buf):
    """Complete payloads at the front of bytearray `buf` (removed from it)."""
    out = []
    while len(buf) >= 2:
        n = buf[0] | buf[1] << 8
        if len(buf) < 2 + n:
            break
        out.append(bytes(buf[2 : 2 + n]))
        buf[: 2 + n] = b""
    return out
