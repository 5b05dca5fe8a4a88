# Torn-cell power-cut fuzzer for the ZMS store (MicroPython): a random workload of
# writes (inline and large), deletes and forced collections, filled up to a target
# share of the capacity, with power cuts under RamFlash's torn-cell model (torn
# programs, torn erases) at random flash operations, and more cuts during the recovery
# mounts that follow. After every cut the store must mount, every id must read as its
# last acknowledged value (the interrupted one: old or new), no deleted id may come
# back, no program may hit bits already cleared, and the store must keep working.
# Used by tests/mp_zms_torn.py; as a soak:  micropython tests/lib/zmstorn.py [ROUNDS]
import random
from aioble_pm.zms import ZMS, ENOSPC, CorruptError
from aioble_pm.flash import RamFlash, PowerCut

# (sectors, sector_size, write_block): 2 and 8 sectors, write blocks 4/8/16/32
GEOMETRIES = (
    (2, 512, 4),
    (2, 512, 16),
    (2, 1024, 32),
    (8, 256, 4),
    (8, 256, 8),
    (8, 512, 16),
    (8, 512, 32),
    (3, 512, 8),
)


class Finding(AssertionError):
    pass


class Fuzz:
    def __init__(self, sectors, sector_size, wb, seed, fill):
        random.seed(seed)
        self.geo = (sectors, sector_size, wb)
        self.seed = seed
        self.f = RamFlash(sectors * sector_size, sector_size=sector_size, write_block=wb)
        self.z = ZMS(self.f)
        a = max(16, wb)
        self.max_len = min(60, self.z.max_value_size)
        cap = (sectors - 1) * (sector_size - 4 * a)
        mean = a + (wb + self.max_len) // 2 // 2  # half the values are inline
        self.keys = [0x10000 * (i % 5) + i for i in range(max(2, int(fill * cap / mean)))]
        self.model = {}
        self.deleted = set()
        self.cuts = 0
        self.recovery_cuts = 0
        self.enospc = 0
        self.step_no = 0
        self.sink = None  # called with each image a cut leaves (tools/zms_decode tests)

    def where(self, what):
        return "geometry %r seed %d step %d: %s" % (self.geo, self.seed, self.step_no, what)

    def value(self):
        n = 1 + random.getrandbits(3) if random.getrandbits(1) else 9 + random.getrandbits(8) % (self.max_len - 8)
        return bytes(random.getrandbits(8) for _ in range(n))

    def mount(self):
        """Mount after a cut, cutting the recovery itself now and then."""
        f = self.f
        for _ in range(4):
            if self.sink:
                self.sink(f.image())
            f.power_on()
            if random.getrandbits(1):
                f.cut_after(random.getrandbits(2), self.partial(), random.getrandbits(30))
            try:
                z = ZMS(f)
                f.cut_after(None)
                return z
            except PowerCut:
                self.recovery_cuts += 1
            except CorruptError as e:
                raise Finding(self.where("mount raised %r" % e))
        f.power_on()
        try:
            return ZMS(f)
        except CorruptError as e:
            raise Finding(self.where("mount raised %r" % e))

    def partial(self):
        r = random.getrandbits(3)
        return None if r < 3 else random.getrandbits(5)

    def check(self, z, k_new=None, v_new=None):
        for k in self.keys:
            try:
                got = z.read(k)
            except CorruptError as e:
                raise Finding(self.where("id %#x: %r" % (k, e)))
            want = self.model.get(k)
            if got == want:
                continue
            if k == k_new and got == v_new:
                continue
            if got is not None and k in self.deleted and k_new != k:
                raise Finding(self.where("deleted id %#x came back as %r" % (k, got)))
            raise Finding(self.where("id %#x reads %r, expected %r%s" % (
                k, got, want, "" if k != k_new else " or %r" % (v_new,))))
        live = sorted(k for k in self.keys if self.model.get(k) is not None)
        if k_new is not None and k_new not in live and v_new is not None:
            live2 = sorted(live + [k_new])
        else:
            live2 = [k for k in live if k != k_new]
        ids = z.ids()
        if ids != live and ids != live2:
            raise Finding(self.where("ids() %r, expected %r" % (ids, live)))
        if self.f.conflicts:
            raise Finding(self.where("%d programs hit already-cleared bits" % self.f.conflicts))

    def step(self):
        self.step_no += 1
        r = random.getrandbits(5)
        k = random.choice(self.keys)
        if r < 22:
            op, v = "put", self.value()
        elif r < 30:
            op, v = "del", None
        else:
            op, v = "gc", None
        f = self.f
        if random.getrandbits(1):
            f.cut_after(random.getrandbits(2), self.partial(), random.getrandbits(30))
        try:
            if op == "put":
                self.z.write(k, v)
            elif op == "del":
                self.z.delete(k)
            else:
                self.z.sector_use_next()
        except PowerCut:
            self.cuts += 1
            z = self.mount()
            if op == "gc":
                self.check(z)
            else:
                self.check(z, k, v)
                self.settle(z, k)
            self.z = z
            return
        except OSError as e:
            if e.args[0] != ENOSPC:
                raise Finding(self.where("%s %#x raised %r" % (op, k, e)))
            self.enospc += 1
            f.cut_after(None)
            return
        f.cut_after(None)
        if op == "put":
            self.model[k] = v
            self.deleted.discard(k)
        elif op == "del":
            self.model.pop(k, None)
            self.deleted.add(k)

    def settle(self, z, k):
        # after a cut the interrupted operation is done or not: adopt what reads back
        got = z.read(k)
        if got is None:
            self.model.pop(k, None)
            self.deleted.add(k)
        else:
            self.model[k] = got
            self.deleted.discard(k)

    def run(self, steps):
        for _ in range(steps):
            self.step()
            if self.step_no % 64 == 0:  # a clean remount must agree too
                self.f.power_on()
                self.z = ZMS(self.f)
                self.check(self.z)
        self.check(ZMS(self.f))
        return self


def campaign(rounds, steps, fills=(0.5, 0.8, 0.95, 1.2), geometries=GEOMETRIES, base_seed=1):
    """Run every geometry x fill for `rounds` seeds; returns (cuts, recovery_cuts, enospc)."""
    totals = [0, 0, 0]
    for rnd in range(rounds):
        for gi, (n, s, wb) in enumerate(geometries):
            for fi, fill in enumerate(fills):
                seed = base_seed + rnd * 1000 + gi * 10 + fi
                fz = Fuzz(n, s, wb, seed, fill).run(steps)
                totals[0] += fz.cuts
                totals[1] += fz.recovery_cuts
                totals[2] += fz.enospc
    return totals


def dump(folder, per_geometry):
    """Write images that torn cuts left (about per_geometry of each geometry) to
    folder/torn-SECTORS-SIZE-WB-N.bin, for the host decoder's tests."""
    for gi, (n, s, wb) in enumerate(GEOMETRIES):
        fz = Fuzz(n, s, wb, 77 + gi, 0.9)
        saved = [0]

        def sink(img):
            if saved[0] < per_geometry:
                with open("%s/torn-%d-%d-%d-%d.bin" % (folder, n, s, wb, saved[0]), "wb") as f:
                    f.write(img)
                saved[0] += 1

        fz.sink = sink
        fz.run(per_geometry * 3)


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "dump":
        dump(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    c, rc, full = campaign(rounds, 400, base_seed=100000)
    print("soak: %d torn cuts in operations, %d in recovery mounts, %d ENOSPC, 0 findings" % (c, rc, full))
