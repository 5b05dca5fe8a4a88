# Power cuts under the torn-cell model (RamFlash cut_after(..., torn=seed)): the
# fuzzer of zmstorn.py over 2-, 3- and 8-sector stores, write blocks 4/8/16/32,
# with cuts inside recovery mounts too; then the cases it
# found, replayed as fixed scenarios; and the first format of a blank partition.
# Fill levels: 50/80/95 % of the capacity and 120 % (the store runs full: ENOSPC).
# A longer soak: `micropython tests/lib/zmstorn.py ROUNDS` (MICROPYPATH=tests/lib:.).
from mptest import eq, timeout
from aioble_pm.zms import ZMS
from aioble_pm.flash import RamFlash, PowerCut
import zmstorn
from zmsutil import empty_ate


def _campaign(geometries, rounds, base_seed):
    cuts, rcuts, full = zmstorn.campaign(rounds, 250, geometries=geometries, base_seed=base_seed)
    print("torn cuts: %d in operations + %d in recovery mounts (%d ENOSPC), geometries %r"
          % (cuts, rcuts, full, geometries))
    return cuts + rcuts


@timeout(120)
def test_torn_cuts_small_stores():
    geos = tuple(g for g in zmstorn.GEOMETRIES if g[0] <= 3)
    assert {g[2] for g in geos} >= {4, 16, 32}
    n = _campaign(geos, 5, 1)
    assert n >= 5000, n


@timeout(120)
def test_torn_cuts_eight_sector_stores():
    geos = tuple(g for g in zmstorn.GEOMETRIES if g[0] == 8)
    eq(sorted(g[2] for g in geos), [4, 8, 16, 32])
    n = _campaign(geos, 5, 7)
    assert n >= 5000, n


def _full_two_sector_store():
    f = RamFlash(1024, sector_size=512, write_block=4)
    z = ZMS(f)
    for i in range(8):
        z.write(i, bytes([i]) * 20)
    return f, z


def test_torn_erase_of_the_only_other_sector_keeps_the_store_mountable():
    # Found by the fuzzer: a collection in a 2-sector store is cut, and the recovery
    # mount (which erases the open sector to rerun the collection) is cut in that erase;
    # the next mount took the garbage it left for a closed sector and refused the
    # partition ("all 2 sectors are closed").
    f, z = _full_two_sector_store()
    model = {i: bytes([i]) * 20 for i in range(8)}
    base = f.image()
    probe = RamFlash.from_image(base, sector_size=512, write_block=4)
    ZMS(probe).sector_use_next()
    tried = 0
    for at in range(probe.ops):
        for seed in range(6):
            g = RamFlash.from_image(base, sector_size=512, write_block=4)
            z = ZMS(g)
            g.cut_after(at, seed % 3, torn=seed)
            try:
                z.sector_use_next()
            except PowerCut:
                pass
            for r in range(3):  # cut the recovery too, at each of its first operations
                g.power_on()
                g.cut_after(r, None, torn=seed + at)
                try:
                    ZMS(g)
                    break
                except PowerCut:
                    tried += 1
            g.power_on()
            z = ZMS(g)
            for k, v in model.items():
                eq(z.read(k), v, "cut %d seed %d" % (at, seed))
            z.write(99, b"still takes writes")
            eq(ZMS(g).read(99), b"still takes writes")
            eq(g.conflicts, 0)
    assert tried > 50, tried


def test_partly_erased_open_sector_is_erased_again():
    # An open sector holding no valid ATE but stray bits (a torn erase that kept its
    # empty ATE) is erased again before anything is written into it.
    f = RamFlash(2048, sector_size=512, write_block=4)
    f.poke(496, empty_ate(1))  # sector 0: an empty ATE, nothing valid, stray bits
    f.poke(100, b"\x12\x34")
    f.poke(300, b"\x00")
    f.reset_counters()
    z = ZMS(f)
    eq(f.erases[0], 1, "sector 0 erased again")
    z.write(5, bytes(range(40)))
    eq(ZMS(f).read(5), bytes(range(40)))
    eq(f.conflicts, 0)


def test_header_with_another_format_left_by_a_torn_erase_is_skipped():
    # Found by the fuzzer: a torn erase left an empty ATE whose version byte read 255
    # with a matching crc8, and mount refused the whole partition.
    f, z = _full_two_sector_store()
    z.sector_use_next()
    img = bytearray(f.image())
    spare = 0 if z.read(0) is not None and ZMS(RamFlash.from_image(img, 512))._open == 1 else 1
    img[spare * 512 + 496 : spare * 512 + 512] = empty_ate(1, version=255)
    g = RamFlash.from_image(img, sector_size=512)
    z = ZMS(g)
    for i in range(8):
        eq(z.read(i), bytes([i]) * 20)
    for _ in range(3):
        z.sector_use_next()
    eq(ZMS(g).read(7), bytes([7]) * 20)


@timeout(60)
def test_first_format_of_a_blank_partition_survives_torn_cuts():
    tried = 0
    for n, size, wb in ((2, 512, 4), (8, 256, 8), (4, 512, 32)):
        probe = RamFlash(n * size, sector_size=size, write_block=wb)
        ZMS(probe)
        ops = probe.ops
        assert ops >= 3, ops  # erase, empty ATE, gc_done
        for at in range(ops):
            for seed in range(24):
                f = RamFlash(n * size, sector_size=size, write_block=wb)
                f.cut_after(at, (None, 1, 3, 9)[seed % 4], torn=seed)
                try:
                    ZMS(f)
                    raise AssertionError("no cut at %d" % at)
                except PowerCut:
                    pass
                f.power_on()
                if seed % 3 == 0:  # and the next boot is cut too
                    f.cut_after(seed % 2, None, torn=seed + 1)
                    try:
                        ZMS(f)
                    except PowerCut:
                        tried += 1
                    f.power_on()
                z = ZMS(f)
                eq(z.ids(), [], "a first boot cut leaves an empty store")
                z.write(1, b"first bond")
                eq(ZMS(f).read(1), b"first bond")
                eq(f.conflicts, 0)
                tried += 1
    print("first-format cuts: %d" % tried)


def test_torn_single_program_ate_that_passes_crc8_is_zeroed():
    # Found by the soak: on 16-byte write blocks an ATE is one program; a torn one whose
    # crc8 still matched pointed at the wrong data, and the id read as "data CRC
    # mismatch" instead of its previous value. Forge that ATE (offset moved, crc8 fixed).
    import zms_ref

    f = RamFlash(2048, sector_size=512, write_block=16)
    z = ZMS(f)
    z.write(3, b"the old value, acknowledged")
    z.write(3, b"the new value, being written")
    addr = 512 - 3 * 16 - 2 * 16  # below the gc_done and the old value's ATE
    a = bytearray(f.image()[addr : addr + 16])
    eq(a[4], 3, "the newest ATE")
    a[8] = 0  # offset now points at the old value's data
    a[0] = zms_ref._crc8_ref(a, 1, 16)
    f.poke(addr, a)
    z = ZMS(f)
    eq(z.read(3), b"the old value, acknowledged")
    eq(f.image()[addr : addr + 16], bytes(16), "the torn ATE is zeroed")
    z.write(3, b"written again")
    eq(ZMS(f).read(3), b"written again")
