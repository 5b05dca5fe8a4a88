# Pinned bonds (pm.pin: never evicted by EVICT_LRU) and pairing windows
# (pm.pairing_window: new bonds only while one is open), on the BLE simulator.
import asyncio
import aioble_pm
from aioble_pm import SecurityError
from mptest import raises, eq, timeout
from pmsim import PM, Peer, accept, connect, disconnect, bond


async def refused(a, h, reason):
    with raises(SecurityError) as e:
        await a.pm.secure(h)
    eq(e.value.reason, reason)
    await disconnect(a, h)


@timeout(120)
async def test_pinned_peer_is_never_evicted():
    a = PM(max_peers=2)
    p0, p1, p2, p3 = Peer("p0"), Peer("p1"), Peer("p2"), Peer("p3")
    eq(await bond(a, p0), 0)
    eq(await bond(a, p1), 1)
    a.pm.rank_highest(1)  # peer 0 is the least recently used
    a.pm.pin(0, True)
    eq(await bond(a, p2), 1, "LRU skips the pinned peer 0 and evicts peer 1")
    eq([e.peer_id for e in a.ids(aioble_pm.PEER_EVICTED)], [1])
    eq(a.pm.resolve(*p0.identity()), 0)
    a.pm.pin(1, True)
    h = await connect(a, p3)
    await refused(a, h, SecurityError.STORAGE_FULL)  # a store full of pinned peers
    eq(a.pm.peer_ids(), [0, 1])
    eq((a.pm.resolve(*p0.identity()), a.pm.resolve(*p2.identity())), (0, 1))
    assert a.ids(aioble_pm.STORAGE_FULL), "STORAGE_FULL event"
    a.pm.pin(1, False)
    eq(await bond(a, p3), 1, "unpinned, it is evictable again")


@timeout(120)
async def test_pin_is_kept_on_flash_and_checks_its_arguments():
    a = PM()
    eq(await bond(a, Peer("p0")), 0)
    eq(a.pm.pinned(0), False)
    a.pm.pin(0, True)
    b = a.reboot()
    eq(b.pm.pinned(0), True)
    with raises(TypeError, "pinned"):
        b.pm.pin(0, 1)
    with raises(ValueError, "no peer with peer_id 3"):
        b.pm.pin(3, True)
    with raises(TypeError, "peer_id"):
        b.pm.pinned("0")
    b.pm.pin(0, False)
    eq(b.reboot().pm.pinned(0), False)
    b.pm.delete(0)  # its pin record goes with it


@timeout(120)
async def test_pairing_window_refuses_new_bonds_while_closed():
    a = PM()
    bonded, stranger = Peer("bonded"), Peer("stranger")
    eq(a.pm.pairing_window(), None, "no window configured: pairing is open")
    h = await accept(a, bonded)
    eq(await a.pm.secure(h), 0)
    await disconnect(a, h)
    eq(a.pm.pairing_window(0), 0)
    h = await accept(a, stranger)
    await refused(a, h, SecurityError.PAIRING_CLOSED)
    failed = a.ids(aioble_pm.CONN_SEC_FAILED)[-1]
    eq(failed.error.reason, SecurityError.PAIRING_CLOSED)
    eq(a.pm.peer_ids(), [0], "the stranger's bond is not kept")
    h = await accept(a, bonded)  # a bonded peer re-encrypts as usual
    eq(await a.pm.secure(h), 0)
    eq(a.ids(aioble_pm.CONN_SEC_SUCCEEDED)[-1].procedure, aioble_pm.PROC_ENCRYPTION)
    await disconnect(a, h)
    left = a.pm.pairing_window(10000)
    assert 9000 < left <= 10000, left
    # the refused stranger kept its half of the pairing (a one-sided bond): it forgets it
    stranger.forget_bonds()
    h = await accept(a, stranger)
    eq(await a.pm.secure(h), 1, "inside the window a new bond is accepted")
    await disconnect(a, h)


@timeout(120)
async def test_pairing_window_closes_by_itself_and_not_across_a_reboot():
    a = PM()
    a.pm.pairing_window(150)
    await asyncio.sleep_ms(300)
    eq(a.pm.pairing_window(), 0)
    h = await connect(a, Peer("late"))  # also as central: no new bond outside the window
    await refused(a, h, SecurityError.PAIRING_CLOSED)
    b = a.reboot()
    eq(b.pm.pairing_window(), None, "a window does not persist")
    eq(await bond(b, Peer("after reboot")), 0)
    with raises(ValueError, "ms"):
        b.pm.pairing_window(-1)
    with raises(TypeError, "ms"):
        b.pm.pairing_window(1.5)
