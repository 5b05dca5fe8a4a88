# Corruption: random bit flips (anywhere, and aimed at sector headers) and garbage
# sectors. Mounting either works or raises CorruptError; a read returns a value that
# was written to that id at some point, None, or raises CorruptError (never bytes
# that were not written to that id); a mounted store still takes new records.
import random
from mptest import eq, raises, timeout
from aioble_pm.zms import ZMS, CorruptError
from aioble_pm.flash import RamFlash

SECTOR = 512
SECTORS = 4
IDS = (0, 1, 2, 3, 0x00010007, 0x80000000, 0xFFFFFFFE)
FRESH = 0x0BADF00D


def history_image(seed=21):
    random.seed(seed)
    f = RamFlash(SECTOR * SECTORS, sector_size=SECTOR)
    z = ZMS(f)
    hist = {k: [None] for k in IDS}
    cur = {}
    for _ in range(250):
        k = random.choice(IDS)
        if random.getrandbits(3) == 0:
            z.delete(k)
            cur.pop(k, None)
        else:
            v = bytes(random.getrandbits(8) for _ in range(1 + random.getrandbits(6) % 40))
            z.write(k, v)
            hist[k].append(v)
            cur[k] = v
    hist["now"] = cur
    return f.image(), hist


def probe(image, hist, stats):
    f = RamFlash.from_image(image, sector_size=SECTOR)
    try:
        z = ZMS(f)
    except CorruptError:
        stats["refused"] += 1
        return
    for k in IDS:
        try:
            v = z.read(k)
        except CorruptError:
            stats["crc"] += 1
            continue
        if v not in hist[k]:
            raise AssertionError("id %#x read %r, never written" % (k, v))
        stats["stale" if v != hist["now"].get(k) else "same"] += 1
    for k in z.ids():
        assert k in IDS, "id %#x appeared from nowhere" % k
    z.write(FRESH, b"written after the damage")
    eq(z.read(FRESH), b"written after the damage")
    eq(ZMS(f).read(FRESH), b"written after the damage")
    stats["mounted"] += 1


def new_stats():
    return {"refused": 0, "mounted": 0, "crc": 0, "stale": 0, "same": 0}


@timeout(120)
def test_random_bit_flips():
    image, hist = history_image()
    random.seed(22)
    stats = new_stats()
    for trial in range(3000):
        b = bytearray(image)
        for _ in range(1 + trial % 3):
            if trial % 3 == 0:  # aim at a header: empty or close ATE of some sector
                s = random.getrandbits(2)
                pos = s * SECTOR + SECTOR - 32 + random.getrandbits(5)
            else:
                pos = random.getrandbits(11) % len(b)
            b[pos] ^= 1 << random.getrandbits(3)
        probe(b, hist, stats)
    print("bit flips, 3000 images: %r" % stats)
    assert stats["mounted"] > 2000, stats


@timeout(120)
def test_garbage_sectors():
    image, hist = history_image()
    random.seed(23)
    stats = new_stats()
    for trial in range(600):
        b = bytearray(image)
        s = random.getrandbits(2)
        kind = trial % 4
        if kind == 0:
            junk = bytes(random.getrandbits(8) for _ in range(SECTOR))
        elif kind == 1:
            junk = bytes(SECTOR)  # all bits programmed
        elif kind == 2:
            o = random.getrandbits(2) * SECTOR  # a copy of another sector
            junk = image[o : o + SECTOR]
        else:  # erased sector
            junk = b"\xff" * SECTOR
        b[s * SECTOR : (s + 1) * SECTOR] = junk
        probe(b, hist, stats)
    print("garbage sectors, 600 images: %r" % stats)
    assert stats["mounted"] > 100, stats


def test_whole_partition_of_garbage_or_zeros():
    for fill in (b"\x00", b"\x5a"):
        f = RamFlash(SECTOR * SECTORS, sector_size=SECTOR, image=fill * (SECTOR * SECTORS))
        try:
            z = ZMS(f)
        except CorruptError as e:
            print("refused %r: %s" % (fill, e))
            continue
        z.write(1, b"ok")
        eq(ZMS(f).read(1), b"ok")


def _store_with_three_sectors_used():
    """4 x 512: sectors 0 and 1 closed, 2 open with the newest values, 3 the spare."""
    f = RamFlash(SECTOR * SECTORS, sector_size=SECTOR)
    z = ZMS(f)
    model = {}
    i = 0
    while z._open != 2 or z._ate_wra % SECTOR > 400:
        k = IDS[i % len(IDS)]
        v = bytes([i & 0xFF]) * (12 + i % 20)
        z.write(k, v)
        model[k] = v
        i += 1
    return f, z, model


def _newest_ate_addr(z, k):
    z._lookup(k)
    return z._find(k, z._ate_wra)


def test_damaged_newest_ate_is_reported_not_replaced_by_an_older_one():
    f, z, model = _store_with_three_sectors_used()
    k = IDS[0]
    addr = _newest_ate_addr(z, k)
    f.flip(addr + 9, 2)  # offset/crc bytes: its id bytes stay intact
    z = ZMS(f)
    with raises(CorruptError, "newest entry damaged"):
        z.read(k)
    with raises(CorruptError, "damaged"):
        z.length(k)
    for other in IDS[1:]:
        eq(z.read(other), model[other])
    for _ in range(SECTORS):  # collecting never brings an older value back
        z.sector_use_next()
        got = None
        try:
            got = z.read(k)
        except CorruptError:
            pass
        eq(got, None)
    eq(z.write(k, b"healed"), True)
    eq(ZMS(f).read(k), b"healed")


def test_header_damage_loses_nothing():
    f, z, model = _store_with_three_sectors_used()
    base = f.image()
    cases = (
        (1 * SECTOR + SECTOR - 16 + 5, 1, "empty ATE of a closed sector"),
        (1 * SECTOR + SECTOR - 32 + 9, 0, "close ATE of a closed sector, 1->0 (cannot be reprogrammed)"),
        (1 * SECTOR + SECTOR - 32 + 0, 3, "close ATE crc"),
        (2 * SECTOR + SECTOR - 16 + 1, 4, "empty ATE (cycle) of the open sector"),
        (3 * SECTOR + SECTOR - 32 + 2, 0, "close slot of the spare"),
    )
    for pos, bit, what in cases:
        g = RamFlash.from_image(base, sector_size=SECTOR)
        g.flip(pos, bit)
        z = ZMS(g)
        for k, v in model.items():
            eq(z.read(k), v, what)
        z.write(FRESH, b"after the damage")
        for _ in range(SECTORS + 1):
            z.sector_use_next()
        z = ZMS(g)
        for k, v in model.items():
            eq(z.read(k), v, what + ", after collecting every sector")
        eq(z.read(FRESH), b"after the damage", what)


def test_garbage_or_erased_sector_in_the_middle_keeps_the_newer_log():
    f, z, model = _store_with_three_sectors_used()
    newest = {k: v for k, v in model.items() if _newest_ate_addr(z, k) // SECTOR == 2}
    assert newest, "some newest values live in sector 2"
    for junk in (b"\xa5" * SECTOR, b"\xff" * SECTOR, bytes(SECTOR)):
        g = RamFlash.from_image(f.image(), sector_size=SECTOR)
        g.poke(1 * SECTOR, junk)  # sector 1 destroyed; sector 2 still holds the newest
        z = ZMS(g)
        eq(z._open, 2, "the open sector stays the one after the damage")
        for k, v in newest.items():
            eq(z.read(k), v)
        z.write(FRESH, b"x" * 30)
        eq(ZMS(g).read(FRESH), b"x" * 30)


def test_torn_ate_is_zeroed_at_mount_not_reported():
    from aioble_pm.flash import PowerCut

    f, z, model = _store_with_three_sectors_used()
    k = IDS[1]
    f.cut_after(1, partial=2)  # the value lands, its ATE tears after 2 bytes
    try:
        z.write(k, b"a value that does not commit")
        raise AssertionError("no cut")
    except PowerCut:
        pass
    f.power_on()
    z = ZMS(f)
    eq(z.read(k), model[k], "the old value, no damage report")
    slot = z._ate_wra + 16
    eq(f.image()[slot : slot + 16], bytes(16), "the torn ATE is zeroed")
