# A bonding cut by power loss at every flash operation under the torn-cell model
# (RamFlash cut_after(..., torn=seed): torn programs and erases), whole and partway:
# after each cut the store mounts, the earlier bond is intact, and the peer whose
# bonding was cut can bond again (and that bond survives a reboot).
import gc
import blesim
from aioble_pm import peers, nimble, flash
from aioble_pm.zms import ZMS
from mptest import eq, timeout, heapsize
from pmsim import PM, Peer, bond, cut_bonding

SECTOR = 4096
SIZE = 4 * SECTOR  # a small store, so that the bonding crosses a garbage collection


@heapsize("4m")
@timeout(300)
async def test_torn_power_cut_at_every_flash_operation_during_bonding():
    fl = flash.RamFlash(SIZE, SECTOR)
    a = PM(fl=fl)
    first = Peer("first")
    await bond(a, first)
    blesim.reboot(a.ble)
    second = Peer("second")
    # other records fill the store until the second bonding has to collect a sector
    z = ZMS(fl)
    for i in range(60):
        z.write(0x00F00000 + i, bytes([i]) * 100)
        base = fl.image()
        probe = flash.RamFlash.from_image(base, SECTOR)
        second.forget_bonds()
        await cut_bonding(probe, second, a.ble)
        if sum(probe.erases):
            break
    n_ops = probe.ops
    assert sum(probe.erases) >= 1, "the bonding crosses a garbage collection"
    eq(peers.PeerDB(ZMS(probe)).ids(), [0, 1])
    tried = 0
    for k in range(n_ops):
        for trial in range(12):
            partial = (None, 5, 13)[trial % 3]
            second.forget_bonds()
            gc.collect()
            fl = flash.RamFlash.from_image(base, SECTOR)
            fl.cut_after(k, partial, torn=k * 131 + trial)
            await cut_bonding(fl, second, a.ble)
            fl.power_on()
            eq(fl.conflicts, 0, "cut %d/%s: a program hit already-cleared bits" % (k, partial))
            db = peers.PeerDB(ZMS(fl))
            what = "cut at flash operation %d (partial %s)" % (k, partial)
            assert 0 in db, "first bond lost, " + what
            eq(db.identity(0), first.identity(), what)
            assert db.has_secret(0, nimble.SEC_OUR) and db.has_secret(0, nimble.SEC_PEER), what
            assert db.ids() in ([0], [0, 1]), (what, db.ids())
            tried += 1
            if trial == 1 and k % 2 == 0:  # the peer bonds again, and it sticks
                second.forget_bonds()
                b = PM(fl=fl, ble=a.ble)
                pid = await bond(b, second)
                b = b.reboot()
                db = peers.PeerDB(ZMS(fl))
                assert db.complete(pid), what + ": the new bond is complete"
                eq(db.identity(pid), second.identity(), what)
                assert 0 in db, what
                blesim.reboot(b.ble)
    print("torn power cuts tried during a bonding: %d over %d flash operations" % (tried, n_ops))
    assert tried >= 12 * n_ops
