# Images written the way upstream ZMS writes them (tests/lib/zmsupstream.py) are mounted
# read-only: a mount programs and erases nothing, reads every value the other writer
# stored, and the store then takes writes of its own on top of that image.
# (Checks the unconfirmed claim of issue 9 that such a mount erased sectors and
# programmed over bytes that were not erased.)
import random
from mptest import eq, timeout
from aioble_pm.zms import ZMS
from aioble_pm.flash import RamFlash
from zmsupstream import Upstream

GEOMETRIES = ((2, 512, 4), (4, 512, 4), (8, 256, 8), (3, 1024, 16), (4, 512, 32))


def _mount_copy(f):
    g = RamFlash.from_image(f.image(), sector_size=f.sector_size, write_block=f.write_block)
    z = ZMS(g)
    return g, z


@timeout(120)
def test_mount_of_upstream_images_is_read_only_and_reads_everything():
    mounts = 0
    for gi, (n, size, wb) in enumerate(GEOMETRIES):
        random.seed(50 + gi)
        f = RamFlash(n * size, sector_size=size, write_block=wb)
        up = Upstream(f)
        keys = list(range(1, 3 + 2 * n))
        for step in range(300):
            k = random.choice(keys)
            if random.getrandbits(3) == 0:
                up.write(k, b"")
            else:
                ln = 1 + random.getrandbits(6) % 24
                up.write(k, bytes(random.getrandbits(8) for _ in range(ln)))
            g, z = _mount_copy(f)
            what = "geometry %r step %d" % ((n, size, wb), step)
            eq((g.ops, g.conflicts), (0, 0), what + ": the mount programmed or erased")
            for key in keys:
                eq(z.read(key), up.values.get(key), what + " id %d" % key)
            mounts += 1
            if step % 25 == 0:  # and we can carry on writing on that image
                for j in range(30):
                    z.write(1000 + j % 3, bytes([j]) * (1 + j % 8))
                z2 = ZMS(g)
                for key in keys:
                    eq(z2.read(key), up.values.get(key), what + " after our writes, id %d" % key)
                eq(g.conflicts, 0)
        assert sum(f.erases) >= 2 * n, "the other writer collected every sector: %r" % f.erases
    print("upstream-written images mounted: %d, none modified" % mounts)
