# The viper hot paths of zms_fmt.py/zms_scan.py against their plain-Python references, on random
# inputs including ids, cycles, CRCs and addresses with the top bit set (viper ints
# are 32-bit on the boards and 64-bit on the unix port).
import binascii
import random
from array import array
from mptest import eq
from aioble_pm import zms_fmt, zms_scan
import zms_ref
from zmsutil import ate, le32

TOP_IDS = (0, 1, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xC0000000, 0xFFFF0000, 0xFFFFFFFE, 0xFFFFFFFF)


def rand32():
    return random.getrandbits(16) << 16 | random.getrandbits(16)


def test_crc8_matches_reference():
    random.seed(1)
    for n in range(0, 40):
        buf = bytes(random.getrandbits(8) for _ in range(n + 3))
        for start in (0, 1, 3):
            eq(zms_fmt._crc8(buf, start, n + 3), zms_ref._crc8_ref(buf, start, n + 3))
    eq(zms_fmt._crc8(b"\xff" * 15, 0, 15), zms_ref._crc8_ref(b"\xff" * 15, 0, 15))


def test_cache_slots_match_reference_and_known_values():
    # (11 * low 16 bits + 2 * high 16 bits) & mask, worked out separately
    known = {0x1: 0xb, 0x70001: 0x19, 0x80000000: 0x10000, 0xfffffffe: 0xcffe8, 0xdeadbeef: 0x9f19f}
    for k, h in known.items():
        eq(zms_ref._slot_ref(k, 0x7FFFFFFF), h)
        eq(zms_scan._slot(k, 0x7FFFFFFF), h, "viper slot of %#x" % k)
        eq(zms_scan._slot(k, 0xFFFF), h & 0xFFFF)
    # the Peer Manager's layout: 32 peers' PEER_SEC (7) and OUR_SEC (16) fill 64 slots,
    # and 8 peers' rank, PEER_SEC, CCCDs and OUR_SEC (6, 7, 8, 16) take 32 different ones
    eq(len({zms_scan._slot(p << 16 | d, 63) for p in range(32) for d in (7, 16)}), 64)
    eq(len({zms_scan._slot(p << 16 | d, 63) for p in range(8) for d in (6, 7, 8, 16)}), 32)
    random.seed(2)
    ids = list(TOP_IDS) + [rand32() for _ in range(2000)]
    for k in ids:
        for mask in (0, 1, 63, 1023, 0x7FFFFFFF):
            eq(zms_scan._slot(k, mask), zms_ref._slot_ref(k, mask), "id %#x mask %#x" % (k, mask))


def test_last_dirty_matches_reference():
    random.seed(3)
    for n in range(0, 70):
        b = bytearray(b"\xff" * n)
        if n and random.getrandbits(1):
            b[random.getrandbits(16) % n] = random.getrandbits(8) & 0xFE
        if n > 3 and random.getrandbits(1):
            b[1] = 0
        eq(zms_fmt._last_dirty(b, n), zms_ref._last_dirty_ref(b, n))


def test_crc32_soft_matches_binascii_and_reference():
    random.seed(4)
    eq(zms_fmt._crc32_soft(b"123456789", 9, 0), 0xCBF43926)
    for n in (0, 1, 9, 80, 88, 300):
        data = bytes(random.getrandbits(8) for _ in range(n))
        for start in (0, 0x80000000, 0xFFFFFFFF, rand32()):
            want = binascii.crc32(data, start)
            eq(zms_fmt._crc32_soft(data, n, start), want, "n %d start %#x" % (n, start))
            eq(zms_ref._crc32_ref(data, n, start), want)


def random_slot(slot_off, cyc, ident):
    """One 16-byte ATE slot of a random kind for the scanner tests."""
    kind = random.getrandbits(4)
    if kind == 0:
        return b"\xff" * 16
    if kind == 1:
        return bytes(random.getrandbits(8) for _ in range(16))
    if kind == 2:  # gc_done / header
        return ate(cyc, 0xFFFFFFFF, 0, le32(random.getrandbits(10)) + b"\xff" * 4)
    if kind == 3:  # delete
        return ate(cyc, ident, 0, b"")
    if kind in (4, 5):  # inline value
        n = 1 + random.getrandbits(3)
        return ate(cyc, ident, n, bytes(random.getrandbits(8) for _ in range(n)))
    if kind in (6, 7, 8):  # large value below the slot, offset aligned to 4
        n = 9 + random.getrandbits(6)
        off = (random.getrandbits(8) * 4) % max(4, slot_off - n + 1)
        return ate(cyc, ident, n, le32(off) + le32(rand32()))
    good = bytearray(ate(cyc, ident, 4, b"\x01\x02\x03\x04"))
    if kind == 9:
        good[1] ^= 0x80  # wrong cycle, crc fixed up
        good[0] = zms_ref._crc8_ref(good, 1, 16)
    elif kind == 10:
        good[0] ^= 1  # bad crc
    elif kind == 11:
        good[15] = 7  # padding not zero
        good[0] = zms_ref._crc8_ref(good, 1, 16)
    elif kind == 12:
        return ate(cyc, ident, 20, le32(2) + le32(0))  # misaligned offset
    elif kind == 13:
        return ate(cyc, ident, 40, le32(slot_off) + le32(0))  # data overlapping the ATE
    elif kind == 14:
        return ate(cyc, ident, 1000, le32(0) + le32(0))  # longer than any value
    else:
        return ate(cyc, ident, 20, le32(0x01000000) + le32(0))  # offset beyond the sector
    return bytes(good)


def test_scan_matches_reference_in_every_mode():
    random.seed(5)
    for trial in range(400):
        cyc = random.choice((1, 2, 0x7F, 0x80, 0xFE))
        k = 1 + random.getrandbits(4)
        slot0 = 16 * (1 + random.getrandbits(5))
        pool = [random.choice(TOP_IDS[:-1])] + [rand32() & 0xFFFFFFFE for _ in range(3)]
        buf = bytearray()
        for j in range(k):
            buf += random_slot(slot0 + 16 * j, cyc, random.choice(pool))
        want_id = random.choice(pool)
        for mode in (0, 1, 2, 3, 4):
            size = random.choice((1, 2, 16, 64)) if mode != 3 else random.choice((4, 8, 64))
            ctx = array("i", [0] * 11)
            ctx[0] = mode
            ctx[1] = cyc
            ctx[2] = slot0
            ctx[3] = 16
            ctx[4] = 432
            ctx[5] = 3
            ctx[6] = random.choice((0, 4096, 0x40000000, 0x7FFF0000))
            ctx[7] = size - 1
            ctx[8] = want_id & 0xFFFF
            ctx[9] = want_id >> 16
            for j, end in ((0, k), (k - 1, -1), (k // 2, k)):
                n = 2 * size if mode == 3 else size
                typ = "H" if mode == 2 else "i"  # (the lookup cache is uint16)
                c1 = array(typ, [0] * n)
                c2 = array(typ, [0] * n)
                if mode == 3 and random.getrandbits(1):  # an id already recorded
                    c1[0] = c2[0] = want_id - (1 << 32) if want_id >> 31 else want_id
                    c1[1] = c2[1] = 5
                ctx2 = array("i", ctx)
                got = zms_scan._scan(buf, j, end, ctx, c1)
                want = zms_ref._scan_ref(buf, j, end, ctx2, c2)
                eq(got, want, "trial %d mode %d from %d to %d" % (trial, mode, j, end))
                eq(list(c1), list(c2), "table after trial %d mode %d" % (trial, mode))
                eq(ctx[10], ctx2[10], "ctx[HIT] after trial %d mode %d" % (trial, mode))


def test_compact_matches_reference():
    random.seed(6)
    for n in (1, 4, 64):
        t = array("i", [0] * (2 * n))
        for i in range(n):
            if random.getrandbits(1):
                t[2 * i] = rand32() - (1 << 31)
                t[2 * i + 1] = random.getrandbits(2)
        t2 = array("i", t)
        eq(zms_scan._compact(t, n), zms_ref._compact_ref(t2, n))
        eq(list(t), list(t2))


def test_header_parse_matches_reference():
    from zmsutil import empty_ate, close_ate

    random.seed(7)
    for trial in range(600):
        a = random.choice((16, 32))
        size = random.choice((512, 4096))
        cyc = random.choice((0, 1, 0x80, 0xFF))
        if trial % 5 == 0:
            e = empty_ate(cyc, version=random.choice((1, 1, 2)), magic=random.choice((0x42, 0x42, 0)), fmt=random.choice((0, 0, 1)))
        else:
            e = empty_ate(cyc)
        off = random.choice((a, 3 * a, size - 3 * a, size - 2 * a, size - 3 * a + 8, 0x01000000 + a))
        c = close_ate(random.choice((cyc, cyc, cyc ^ 1)), off)
        b = bytearray(c + b"\xff" * (a - 16) + e + b"\xff" * (a - 16))
        if trial % 7 == 0:
            b[random.getrandbits(8) % len(b)] ^= 1 << random.getrandbits(3)
        if trial % 11 == 0:
            b[0:16] = b"\xff" * 16
        eq(zms_fmt._header(b, a, size), zms_ref._header_ref(b, a, size), "trial %d" % trial)
    eq(zms_fmt._header(close_ate(1, 0x3D0) + empty_ate(1), 16, 1024), 1 | 0x300 | (0x3D0 // 16) << 16)


def test_scan_accepts_32_byte_ate_slots():
    ctx = array("i", [0, 1, 400, 32, 400, 31, 0, 0, 0x1234, 0x8000, 0])
    slot = ate(1, 0x80001234, 3, b"abc") + b"\xff" * 16
    buf = b"\xff" * 32 + slot
    cache = array("i", [0])
    eq(zms_scan._scan(buf, 0, 2, ctx, cache), 1)
    ctx[0] = 1
    eq(zms_scan._scan(buf, 0, 2, ctx, cache), 1)
    eq(zms_ref._scan_ref(buf, 0, 2, ctx, cache), 1)
