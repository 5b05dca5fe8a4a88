# aioble_pm under unmodified aioble (the process's own device) against scripted peers on
# the simulated air: secure(), whitelisted scanning, connecting to a bonded peer behind a
# fresh RPA, and advertising to whitelisted centrals only.
import asyncio
import blesim
from mptest import need, eq, raises, timeout
from pmsim import Peer, until

ADV = b"\x02\x01\x06"


def _pm(**kw):
    aioble = need("aioble")
    import aioble_pm
    from aioble_pm import flash

    pm = aioble_pm.PeerManager(flash.RamFlash(8 * 4096, 4096), **kw)
    events = []
    pm.register(events.append)
    pm.attach()
    aioble.config(bond=True)  # activates the stack: our store answers its GET_SECRETs
    return aioble, aioble_pm, pm, events


async def _bond(aioble, pm, peer):
    peer.advertise()
    dev = aioble.Device(*peer.advertise())
    conn = await dev.connect(timeout_ms=3000)
    pid = await pm.secure(conn)
    await conn.disconnect()
    return pid


@timeout(120)
async def test_connect_to_bonded_peer_behind_rotating_rpas():
    aioble, aioble_pm, pm, events = _pm()
    phone = Peer("phone")
    eq(await _bond(aioble, pm, phone), 0)
    phone.ble.config(addr_mode=2)
    blesim.rpa_timeout(phone.ble, 1)
    rpas = set()
    for _ in range(3):
        blesim.advance(1500)  # a new RPA
        rpas.add(phone.advertise()[1])
        conn = await pm.connect(0, timeout_ms=3000)  # scan, resolve, connect, secure
        eq(pm.peer_id(conn), 0)
        assert conn.encrypted
        eq(events[-1].procedure, aioble_pm.PROC_ENCRYPTION)
        await conn.disconnect()
        await asyncio.sleep_ms(50)
    eq(len(rpas), 3)
    phone.ble.gap_advertise(None)
    with raises(asyncio.TimeoutError, "not seen"):
        await pm.connect(0, timeout_ms=300)


@timeout(120)
async def test_scan_yields_whitelisted_peers_once():
    aioble, aioble_pm, pm, events = _pm()
    friend = Peer("friend")
    eq(await _bond(aioble, pm, friend), 0)
    friend.ble.config(addr_mode=2)
    strangers = [Peer("s%d" % i) for i in range(3)]
    for s in strangers:
        s.advertise()
    friend.advertise()

    async def changing_adverts():  # new payloads: aioble yields the friend again each time
        for i in range(20):
            friend.ble.gap_advertise(20000, b"\x02\x01\x06\x04\xff\x01\x02" + bytes([i]))
            await asyncio.sleep_ms(20)

    for dedup in (True, False):
        task = asyncio.create_task(changing_adverts())
        got = []
        async for result, pid in pm.scan(pm.whitelist(), duration_ms=500, dedup=dedup):
            got.append((pid, bytes(result.device.addr)))
        await task
        assert got and all(pid == 0 for pid, _ in got), "only the friend, never the strangers"
        if dedup:
            eq(len(got), 1, "the friend's address once")
            eq(got[0][1], blesim.ota_addr(friend.ble)[1], "the RPA it advertises with")
        else:
            assert len(got) > 1, "without dedup, each new advertisement"


@timeout(120)
async def test_advertise_accepts_only_whitelisted_centrals():
    aioble, aioble_pm, pm, events = _pm()
    me = aioble.core.ble
    friend = Peer("friend")
    # bond with the friend as a peripheral first
    task = asyncio.create_task(aioble.advertise(20000, adv_data=ADV, timeout_ms=3000))
    await asyncio.sleep_ms(10)
    friend.ble.gap_connect(*blesim.ota_addr(me))
    conn = await task
    eq(await pm.secure(conn), 0)
    await conn.disconnect()
    await asyncio.sleep_ms(50)
    stranger = Peer("stranger")
    task = asyncio.create_task(pm.advertise(20000, adv_data=ADV, timeout_ms=3000))
    await asyncio.sleep_ms(10)
    stranger.ble.gap_connect(*blesim.ota_addr(me))
    await until(lambda: [e for e in events if e.id == aioble_pm.CONN_REFUSED], what="CONN_REFUSED")
    await until(lambda: stranger.events(8), what="the stranger dropped")
    friend.ble.config(addr_mode=2)
    friend.ble.gap_connect(*blesim.ota_addr(me))
    conn = await task
    eq(pm.peer_id(conn), 0)
    refused = [e for e in events if e.id == aioble_pm.CONN_REFUSED]
    eq([e.addr for e in refused], [stranger.identity()])
    eq(pm.accept(None), None, "the accept list applies while pm.advertise() runs")


def test_a_second_manager_replaces_the_first_in_aioble():
    aioble, aioble_pm, pm, events = _pm()
    from aioble_pm import flash

    handlers = aioble.core._irq_handlers
    n = len(handlers)
    pm2 = aioble_pm.PeerManager(flash.RamFlash(8 * 4096, 4096))
    pm2.attach()
    eq(len(handlers), n, "the first manager's handler was replaced, not joined")
    # and only the second one answers the stack now
    eq(pm2.irq(30, (10, b"irk", b"\x22" * 16)), True)  # pm2's own IRK
    eq(bytes(handlers[0](29, (10, 0, b"irk"))), b"\x22" * 16)


@timeout(60)
async def test_deleted_bond_not_served_from_aioble_store():
    aioble, aioble_pm, pm, events = _pm()
    from aioble_pm import nimble

    phone = Peer("phone")
    eq(await _bond(aioble, pm, phone), 0)
    key = nimble.addr_key(*phone.identity())
    stale = pm.irq(29, (2, 0, key))
    import aioble.security

    aioble.security._secrets[(2, key)] = bytes(stale)  # an app that also ran load_secrets()
    pm.delete(0)
    eq(aioble.core.ble_irq(29, (2, 0, key)), b"", "not found: aioble's dict is never consulted")
    eq(aioble.core.ble_irq(29, (2, 0, None)), b"")


@timeout(60)
async def test_peer_id_of_a_closed_connection_is_none():
    aioble, aioble_pm, pm, events = _pm()
    phone = Peer("phone")
    conn = await aioble.Device(*phone.advertise()).connect(timeout_ms=3000)
    eq(await pm.secure(conn), 0)
    eq(pm.peer_id(conn), 0)
    await conn.disconnect()
    eq(pm.peer_id(conn), None, "int | None, as documented")
    eq(pm.connected(conn), False)
    with raises(TypeError, "conn"):
        pm.peer_id("phone")


@timeout(60)
async def test_leaving_a_scan_stops_it():
    aioble, aioble_pm, pm, events = _pm()
    friend = Peer("friend")
    eq(await _bond(aioble, pm, friend), 0)
    friend.ble.config(addr_mode=2)  # seen by its RPAs (network privacy mode)
    friend.advertise()
    async with pm.scan(pm.whitelist(), duration_ms=5000) as scan:
        async for result, pid in scan:
            eq(pid, 0)
            break
        assert scan.running
    assert not scan.running, "leaving `async with` stops the scan"
    # and aioble can scan again at once
    async with aioble.scan(200) as s:
        async for _ in s:
            break


@timeout(60)
async def test_advertise_with_no_bonds_lets_the_first_central_bond():
    aioble, aioble_pm, pm, events = _pm()
    me = aioble.core.ble
    first = Peer("first")
    task = asyncio.create_task(pm.advertise(20000, adv_data=ADV, timeout_ms=3000))
    await asyncio.sleep_ms(10)
    first.ble.gap_connect(*blesim.ota_addr(me))
    conn = await task
    eq(await pm.secure(conn), 0)
    eq([e for e in events if e.id == aioble_pm.CONN_REFUSED], [])
    await conn.disconnect()
    # with a bond, the default list holds the bonded peers only
    stranger = Peer("stranger")
    task = asyncio.create_task(pm.advertise(20000, adv_data=ADV, timeout_ms=3000))
    await asyncio.sleep_ms(10)
    stranger.ble.gap_connect(*blesim.ota_addr(me))
    await until(lambda: [e for e in events if e.id == aioble_pm.CONN_REFUSED], what="CONN_REFUSED")
    task.cancel()
