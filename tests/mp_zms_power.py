# Power loss: a scripted workload of 330 operations (writes inline and large,
# deletes, forced collections) crossing many garbage collections, cut at every
# program/erase it performs, whole or partway through (only a prefix lands), and also
# again while recovering. After each cut the store is remounted and must hold every
# acknowledged write and delete, the interrupted operation fully or not at all, and
# keep working (the interrupted operation and the next ones are redone and checked,
# then checked again after another remount).
import random
from mptest import eq, timeout
from aioble_pm.zms import ZMS
from aioble_pm.flash import RamFlash, PowerCut

SECTOR = 512
SECTORS = 4
IDS = (0, 1, 2, 0x00010007, 0x00020007, 0x7FFF0001, 0x80000000, 0xFFFFFFFE)
SCRATCH = 0x5C5C5C5C  # written only after a cut


def workload(count=330, seed=7):
    random.seed(seed)
    ops = []
    for _ in range(count):
        r = random.getrandbits(5)
        k = IDS[random.getrandbits(3)]
        if r < 2:
            ops.append(("gc", 0, None))
        elif r < 7:
            ops.append(("del", k, None))
        else:
            n = 1 + random.getrandbits(6) % 48
            ops.append(("put", k, bytes(random.getrandbits(8) for _ in range(n))))
    return ops


def apply(z, op):
    kind, k, v = op
    if kind == "put":
        z.write(k, v)
    elif kind == "del":
        z.delete(k)
    else:
        z.sector_use_next()


def after(model, op):
    kind, k, v = op
    m = dict(model)
    if kind == "put":
        m[k] = v
    elif kind == "del":
        m.pop(k, None)
    return m


class Reference:
    """The uninterrupted run: image and model before every operation, and how many
    flash operations each one performs."""

    def __init__(self):
        self.ops = workload()
        f = RamFlash(SECTOR * SECTORS, sector_size=SECTOR, write_block=4)
        self.fresh = f.image()
        z = ZMS(f)
        self.mount_ops = f.ops
        self.images = []
        self.models = []
        self.costs = []
        model = {}
        for op in self.ops:
            self.images.append(f.image())
            self.models.append(model)
            before = f.ops
            apply(z, op)
            self.costs.append(f.ops - before)
            model = after(model, op)
        self.images.append(f.image())
        self.models.append(model)
        self.erases = sum(f.erases)


def check(z, model, op, what):
    """Every id reads as in `model`, except op's id which may also read as after op."""
    if op is not None and op[0] != "gc":
        done = after(model, op)
    else:
        done = model
    for k in IDS:
        got = z.read(k)
        if got != model.get(k) and got != done.get(k):
            raise AssertionError("%s: id %#x reads %r, expected %r or %r" % (what, k, got, model.get(k), done.get(k)))


def mounted(image):
    f = RamFlash.from_image(image, sector_size=SECTOR, write_block=4)
    z = ZMS(f)
    eq(f.ops, 0, "remounting a clean image programs nothing")
    return f, z


def cut_and_check(ref, i, c, partial, double=False):
    """Cut op i at its c-th flash operation; returns the number of recovery cuts tried."""
    op = ref.ops[i]
    f, z = mounted(ref.images[i])
    f.cut_after(c, partial)
    try:
        apply(z, op)
        raise AssertionError("op %d %r did not reach flash operation %d" % (i, op[0], c))
    except PowerCut:
        pass
    f.power_on()
    what = "op %d (%s %#x) cut at %d/%s" % (i, op[0], op[1], c, partial)
    extra = 0
    if double:
        cut_image = f.image()
        g = RamFlash.from_image(cut_image, sector_size=SECTOR, write_block=4)
        ZMS(g)
        for r in range(g.ops):  # cut the recovery itself at each of its operations
            h = RamFlash.from_image(cut_image, sector_size=SECTOR, write_block=4)
            h.cut_after(r)
            try:
                ZMS(h)
                raise AssertionError("%s: recovery did not reach operation %d" % (what, r))
            except PowerCut:
                pass
            h.power_on()
            check(ZMS(h), ref.models[i], op, what + ", recovery cut at %d" % r)
            extra += 1
    z = ZMS(f)
    check(z, ref.models[i], op, what)
    # Keep working. First operations other than the interrupted one (a delete needs
    # no room, so it lands in a sector a cut close left behind; a new value lands on
    # data a cut program left behind), then redo op i and the next two, then remount.
    model = dict(ref.models[i])
    others = [k for k in model if k != op[1]]
    if others:
        z.delete(others[0])
        del model[others[0]]
    scratch = bytes((i + c + j) & 0xFF for j in range(24))
    z.write(SCRATCH, scratch)
    for j in range(i, min(i + 3, len(ref.ops))):
        apply(z, ref.ops[j])
        model = after(model, ref.ops[j])
        check(z, model, None, what + ", redo op %d" % j)
    z.sector_use_next()
    for z in (z, ZMS(f)):
        check(z, model, None, what + ", after the redo and a remount")
        eq(z.read(SCRATCH), scratch, what + ": scratch record")
    eq(f.conflicts, 0, what + ": a program hit non-erased bits")
    return extra


def test_reference_run_is_deterministic_and_crosses_many_gcs():
    ref = Reference()
    total = sum(ref.costs)
    print("workload: %d ops, %d flash operations, %d erases" % (len(ref.ops), total, ref.erases))
    assert len(ref.ops) >= 300
    assert ref.erases >= 20, ref.erases
    for i in (0, 50, 200, 329):  # a freshly mounted store does exactly what the live one did
        f, z = mounted(ref.images[i])
        apply(z, ref.ops[i])
        eq(f.ops, ref.costs[i], "op %d cost" % i)
        eq(f.image(), ref.images[i + 1], "op %d result" % i)


@timeout(150)
def test_power_cut_at_every_operation():
    ref = Reference()
    tried = 0
    for c in range(ref.mount_ops):  # cuts while formatting the fresh flash
        f = RamFlash.from_image(ref.fresh, sector_size=SECTOR, write_block=4)
        f.cut_after(c)
        try:
            ZMS(f)
        except PowerCut:
            pass
        f.power_on()
        eq(ZMS(f).ids(), [])
        tried += 1
    for i in range(len(ref.ops)):
        for c in range(ref.costs[i]):
            cut_and_check(ref, i, c, None)
            tried += 1
    print("power-loss cut points tried (whole operations): %d" % tried)
    assert tried > 800, tried


@timeout(150)
def test_power_cut_mid_program():
    # every prefix length of an ATE (body 12 bytes, head 4) and of a 16-byte slot,
    # and some of the longer value programs and erases
    partials = tuple(range(1, 17)) + (20, 28, 40, 47, 200)
    ref = Reference()
    tried = 0
    for i in range(len(ref.ops)):
        for c in range(ref.costs[i]):
            for p in partials:
                cut_and_check(ref, i, c, p)
                tried += 1
    print("power-loss cut points tried (partial programs/erases): %d" % tried)
    assert tried > 20000, tried


@timeout(150)
def test_power_cut_during_recovery():
    ref = Reference()
    tried = 0
    recoveries = 0
    for i in range(len(ref.ops)):
        for c in range(ref.costs[i]):
            for p in (None, 7):
                recoveries += cut_and_check(ref, i, c, p, double=True)
                tried += 1
    print("power-loss cut points tried: %d, plus %d cuts inside the recovery after them" % (tried, recoveries))
    assert recoveries > 50, recoveries
