# Model-based random test: thousands of random writes, deletes, forced collections
# and remounts, checked against a dict after every step.
import random
from mptest import eq, timeout
from aioble_pm.zms import ZMS, ENOSPC
from aioble_pm.flash import RamFlash


def _value(rng_len):
    return bytes(random.getrandbits(8) for _ in range(rng_len))


def run_model(seed, steps, size, sector_size, write_block, cache, ids, max_len):
    random.seed(seed)
    f = RamFlash(size, sector_size=sector_size, write_block=write_block)
    z = ZMS(f, lookup_cache=cache)
    a = 32 if write_block == 32 else 16
    n_sectors = size // sector_size
    model = {}
    full = 0
    remounts = 0
    gcs = 0
    for step in range(steps):
        r = random.getrandbits(7)
        k = random.choice(ids)
        if r < 70:
            n = 1 + random.getrandbits(8) % max_len
            v = _value(n)
            try:
                changed = z.write(k, v)
            except OSError as e:
                eq(e.errno, ENOSPC)
                full += 1
                z._nospace = 0  # without the shortcut, a full retry must fail the same way
                try:
                    z.write(k, v)
                    raise AssertionError("ENOSPC shortcut refused a write that fits, step %d" % step)
                except OSError as e2:
                    eq(e2.errno, ENOSPC)
                continue
            eq(changed, model.get(k) != v, "write result, step %d" % step)
            model[k] = v
        elif r < 80 and k in model:
            same = model[k]
            eq(z.write(k, same), False, "identical rewrite, step %d" % step)
        elif r < 110:
            eq(z.delete(k), k in model, "delete result, step %d" % step)
            model.pop(k, None)
        elif r < 116:
            z.sector_use_next()
            gcs += 1
        elif r < 122:
            z = ZMS(f, lookup_cache=cache)
            remounts += 1
        else:
            eq(z.ids(), sorted(model), "ids at step %d" % step)
        probe = random.choice(ids)
        eq(z.read(probe), model.get(probe), "read %#x at step %d" % (probe, step))
    z = ZMS(f, lookup_cache=cache)
    eq(z.ids(), sorted(model))
    for k in ids:
        eq(z.read(k), model.get(k), "final read %#x" % k)
    used = sum(a + ((len(v) + write_block - 1) // write_block * write_block if len(v) > 8 else 0) for v in model.values())
    eq(z.free_space(), max(0, (n_sectors - 1) * (sector_size - 4 * a) - used))
    eq(f.conflicts, 0, "programs never needed a 0 bit to become 1")
    print("seed %d: %d steps, %d ENOSPC, %d remounts, %d forced GCs, %d erases" % (seed, steps, full, remounts, gcs, sum(f.erases)))
    return sum(f.erases)


@timeout(120)
def test_model_small_sectors_many_gcs():
    ids = [0, 1, 2, 3, 0x00010007, 0x00020007, 0x80000000, 0xFFFFFFFE]
    erases = run_model(11, 3000, 4 * 512, 512, 4, 64, ids, 60)
    assert erases > 100, erases


@timeout(120)
def test_model_tiny_cache_and_near_full():
    ids = list(range(24))
    run_model(12, 3000, 3 * 512, 512, 4, 1, ids, 40)


@timeout(120)
def test_model_without_cache_and_odd_write_blocks():
    ids = [7, 8, 9, 0xC0000001, 0xC0000002]
    run_model(13, 1500, 4 * 256, 256, 1, 0, ids, 30)
    run_model(14, 1500, 4 * 512, 512, 8, 4, ids, 50)
    run_model(15, 1500, 4 * 640, 640, 32, 8, ids, 50)


@timeout(120)
def test_model_two_sector_partition():
    run_model(16, 2000, 2 * 512, 512, 4, 16, [1, 2, 3, 4], 40)
