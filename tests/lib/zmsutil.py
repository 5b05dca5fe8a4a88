# Helpers for the ZMS test files (MicroPython): ATE builders and image inspection.
import zms_ref


def ate(cycle, ident, length, tail8):
    """16 ATE bytes with a correct crc8: cycle, len, id, then 8 bytes (inline data
    padded with zeros, or offset + CRC-32, or a header payload)."""
    b = bytearray(16)
    b[1] = cycle
    b[2] = length & 0xFF
    b[3] = length >> 8
    for i in range(4):
        b[4 + i] = (ident >> (8 * i)) & 0xFF
    for i, v in enumerate(tail8):
        b[8 + i] = v
    b[0] = zms_ref._crc8_ref(b, 1, 16)
    return bytes(b)


def le32(v):
    return bytes(((v >> s) & 0xFF for s in (0, 8, 16, 24)))


def empty_ate(cycle=1, version=1, magic=0x42, fmt=0):
    return ate(cycle, 0xFFFFFFFF, 0xFFFF, le32(0) + bytes((version, magic, fmt, 0)))


def close_ate(cycle, offset):
    return ate(cycle, 0xFFFFFFFF, 0, le32(offset) + b"\xff" * 4)


def gc_done_ate(cycle, offset):
    return ate(cycle, 0xFFFFFFFF, 0, le32(offset) + b"\xff" * 4)


def header_state(image, sector_size, s, a=16):
    """'closed', 'open' (valid empty ATE only) or 'none' for sector s of an image."""
    base = s * sector_size
    e = image[base + sector_size - a : base + sector_size - a + 16]
    c = image[base + sector_size - 2 * a : base + sector_size - 2 * a + 16]
    if zms_ref._crc8_ref(e, 1, 16) != e[0] or e[2] != 0xFF or e[3] != 0xFF:
        return "none"
    if zms_ref._crc8_ref(c, 1, 16) == c[0] and c[2] == 0 and c[3] == 0 and c[1] == e[1]:
        return "closed"
    return "open"


def fill_ids(store, ids, size, salt=0):
    """Write a distinct value of `size` bytes to each id; returns {id: value}."""
    out = {}
    for k in ids:
        v = bytes(((k * 7 + i * 13 + salt) & 0xFF for i in range(size)))
        store.write(k, v)
        out[k] = v
    return out
