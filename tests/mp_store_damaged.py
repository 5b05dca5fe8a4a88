# When no sector of the bond flash is usable (every sector closed, or only another
# ZMS format/version), PeerManager still boots: with an empty store in RAM, the
# documented error in `store_error`, an ERROR_UNEXPECTED event to each handler that
# registers, and the flash left exactly as it was (the host decoder can read it).
import aioble_pm
from aioble_pm import flash, peers
from aioble_pm.zms import CorruptError
from mptest import eq
from zmsutil import empty_ate, close_ate
from pmsim import PM, Peer, bond

SECTOR = 4096


def _all_closed(n=4):
    img = bytearray(b"\xff" * (n * SECTOR))
    for s in range(n):
        img[s * SECTOR + SECTOR - 16 : s * SECTOR + SECTOR] = empty_ate(1)
        img[s * SECTOR + SECTOR - 32 : s * SECTOR + SECTOR - 16] = close_ate(1, SECTOR - 48)
    return bytes(img)


def test_open_store_reports_an_unusable_flash_and_leaves_it_alone():
    for img in (_all_closed(), b"".join(b"\xff" * (SECTOR - 16) + empty_ate(1, fmt=1) for _ in range(4))):
        fl = flash.RamFlash.from_image(img, SECTOR)
        store, err = peers.open_store(fl)
        assert isinstance(err, CorruptError) and "no usable sector" in str(err), err
        eq(store.ids(), [])
        store.write(1, b"in RAM only")
        eq(fl.image(), img, "the damaged flash is not written")
    fl = flash.RamFlash(4 * SECTOR, SECTOR)
    store, err = peers.open_store(fl)
    eq(err, None)
    store.write(1, b"on flash")
    eq(peers.open_store(fl)[0].read(1), b"on flash")


async def test_peer_manager_boots_on_an_unusable_flash_with_an_event():
    img = _all_closed()
    fl = flash.RamFlash.from_image(img, SECTOR)
    a = PM(fl=fl)
    assert isinstance(a.pm.store_error, CorruptError), a.pm.store_error
    errs = [e for e in a.events if e.id == aioble_pm.ERROR_UNEXPECTED]
    eq(len(errs), 1, "one event tells the app")
    assert errs[0].error is a.pm.store_error
    eq(a.pm.peer_ids(), [])
    pid = await bond(a, Peer("p"))  # bonding still works, in RAM
    eq(a.pm.peer_ids(), [pid])
    eq(fl.image(), img, "the flash is left for the host decoder")
    ok = PM(fl=flash.RamFlash(4 * SECTOR, SECTOR))
    eq(ok.pm.store_error, None)
    eq([e for e in ok.events if e.id == aioble_pm.ERROR_UNEXPECTED], [])


class _ReadOnly(flash.RamFlash):
    """Flash whose programs and erases fail (worn out, write-protected): boot must go on."""

    broken = False

    def program(self, off, data):
        if self.broken:
            raise OSError(5)
        return super().program(off, data)

    def erase(self, sector):
        if self.broken:
            raise OSError(5)
        return super().erase(sector)


def test_boot_cleanup_that_cannot_write_does_not_stop_the_boot():
    fl = _ReadOnly(4 * SECTOR, SECTOR)
    store = peers.open_store(fl)[0]
    key = bytes(range(7))
    store.write(peers.record_id(0, peers.DATA_PEER_SEC), key + bytes(80))  # a half bond
    store.write(peers.record_id(9, peers.DATA_PEER_SEC), key + bytes(80))  # beyond max_peers
    store.write(peers.record_id(9, peers.DATA_OUR_SEC), key + bytes(80))
    fl.broken = True
    pm = aioble_pm.PeerManager(flash=fl, max_peers=8)  # must not raise
    assert 9 not in pm.peer_ids(), pm.peer_ids()  # (the half bond stays: it cannot be removed)
    assert isinstance(pm.store_error, OSError), pm.store_error
