# The remote database cache (aioble_pm/gattc.py, docs/GATTC.md): the chunk layout and its
# validation, and pm.services() under unmodified aioble against a scripted peripheral on
# the simulated air: cached vs discovered (ATT PDUs counted by the simulator), the drop
# rules (Service Changed, bond deleted, the app), unbonded peers, damaged chunks.
import asyncio
import struct
import bluetooth
import blesim
from mptest import need, eq, raises, timeout
from pmsim import Peer
from aioble_pm import gattc
from aioble_pm.peerrec import seal

_SVC = bluetooth.UUID(0x181A)
_TEMP = bluetooth.UUID(0x2A6E)
_HUM = bluetooth.UUID(0x2A6F)
_U128 = bluetooth.UUID("6e400001-b5a3-f393-e0a9-e50e24dcca9e")
_C128 = bluetooth.UUID("6e400002-b5a3-f393-e0a9-e50e24dcca9e")
_USER_DESC = bluetooth.UUID(0x2901)
_F_READ, _F_WRITE, _F_NOTIFY, _F_INDICATE = 0x02, 0x08, 0x10, 0x20

# docs/GATTC.md's worked example: one service, two characteristics, a CCCD
DB = [(0x0010, 0x0016, b"\x1a\x18", [(0x0012, 0x0013, _F_READ | _F_NOTIFY, b"\x6e\x2a", [(0x0013, b"\x02\x29")]),
                                      (0x0015, 0x0016, _F_READ, b"\x6f\x2a", [])])]
DB_BYTES = bytes([1, 1, 0x10, 0, 0x16, 0, 2, 0x1A, 0x18, 2,
                  0x12, 0, 0x13, 0, 0x12, 2, 0x6E, 0x2A, 1, 0x13, 0, 2, 0x02, 0x29,
                  0x15, 0, 0x16, 0, 0x02, 2, 0x6F, 0x2A, 0])


# --- layout and validation --------------------------------------------------------------

def test_layout_of_the_worked_example():
    chunk = gattc.encode(DB)
    eq(bytes(chunk), bytes(seal(DB_BYTES)))
    eq((len(chunk), gattc.size(DB)), (37, 37))
    eq(gattc.decode(chunk), DB)


def test_roundtrip_of_mixed_uuid_sizes():
    db = [(1, 5, b"\x00\x18", [(3, 5, _F_READ, b"\x00\x2a", [])]),
          (6, 9, b"\x01\x18", [(8, 9, _F_INDICATE, b"\x05\x2a", [(9, b"\x02\x29")])]),
          (0x20, 0xFFFF, bytes(_U128), [(0x22, 0x24, 0x1A, bytes(_C128), [(0x23, b"\x01\x29\x00\x00"), (0x24, b"\x02\x29")])])]
    chunk = gattc.encode(db)
    eq(len(chunk), gattc.size(db))
    eq(gattc.decode(chunk), db)
    eq(gattc.sc_handle(db), 8)
    eq(gattc.sc_handle(DB), 0)


def _set(i, v):
    def edit(b):
        b[i] = v

    return edit


def _bump_count(body):
    body[1] += 1  # one service more than the chunk holds


def test_decode_refuses_damaged_or_malformed_chunks():
    good = bytearray(gattc.encode(DB))
    flipped = bytearray(good)
    flipped[5] ^= 0x01  # CRC-32 fails
    body = bytearray(DB_BYTES)

    def resealed(edit):
        b = bytearray(body)
        edit(b)
        return seal(b)

    bad = {
        "crc": flipped,
        "truncated": good[:-5],
        "empty": b"",
        "none": None,
        "short": seal(b"\x01"),
        "version": resealed(_set(0, 2)),
        "extra byte": seal(body + b"\x00"),
        "missing char": resealed(_set(9, 3)),  # 3 characteristics, 2 stored
        "uuid length": resealed(_set(6, 3)),
        "service end before start": resealed(_set(4, 0x0F)),
        "value before its declaration": resealed(_set(10, 0x11)),
        "char beyond its service": resealed(_set(26, 0x17)),
        "char end before value": resealed(_set(12, 0x11)),
        "chars out of order": resealed(_set(24, 0x13)),
        "descriptor on the value": resealed(_set(19, 0x12)),
        "descriptor beyond its char": resealed(_set(19, 0x14)),
        "handle 0": resealed(_set(2, 0)),
    }
    for what, chunk in bad.items():
        if gattc.decode(chunk) is not None:
            raise AssertionError("decoded a chunk with " + what)
    two = [DB[0], (0x0016, 0x0020, b"\x0f\x18", [])]  # overlaps the first service
    with raises(ValueError, "service handles"):
        gattc.encode(two)
    eq(gattc.decode(seal(b"\x01\x02" + DB_BYTES[2:] + bytes([0x16, 0, 0x20, 0, 2, 0x0F, 0x18, 0]))), None)


def test_encode_names_what_is_malformed():
    with raises(ValueError, "UUID"):
        gattc.encode([(1, 2, b"\x00", [])])
    with raises(ValueError, "UUID"):
        gattc.encode([(1, 2, "ab", [])])
    with raises(ValueError, "characteristic"):
        gattc.encode([(1, 5, b"\x00\x18", [(2, 3, 2, b"\x00\x2a", [])])])  # no room for the declaration
    with raises(ValueError, "descriptor"):
        gattc.encode([(1, 5, b"\x00\x18", [(3, 4, 2, b"\x00\x2a", [(5, b"\x02\x29")])])])
    with raises(ValueError, "255"):
        gattc.encode([(i + 1, i + 1, b"\x00\x18", []) for i in range(256)])


def test_characteristic_ends_from_the_next_declaration():
    eq(gattc.char_ends(0x20, [(0x12, 2, b"a"), (0x15, 2, b"b"), (0x17, 2, b"c")]),
       [(0x12, 0x13, 2, b"a"), (0x15, 0x15, 2, b"b"), (0x17, 0x20, 2, b"c")])
    eq(gattc.char_ends(9, []), [])


# --- pm.services() under aioble ----------------------------------------------------------

def _pm(fl=None):
    aioble = need("aioble")
    import aioble_pm
    from aioble_pm import flash

    fl = fl or flash.RamFlash(8 * 4096, 4096)
    pm = aioble_pm.PeerManager(fl)
    events = []
    pm.register(events.append)
    pm.attach()
    aioble.config(bond=True)
    return aioble, pm, fl, events


def _sensor(name="sensor"):
    """A scripted peripheral: a 16-bit service (a notify/read char with a CCCD and a
    user description, a read char) and a 128-bit one."""
    peer = Peer(name)
    ((t, desc, h), (c,)) = peer.ble.gatts_register_services((
        (_SVC, ((_TEMP, _F_READ | _F_NOTIFY, ((_USER_DESC, _F_READ),)), (_HUM, _F_READ))),
        (_U128, ((_C128, _F_READ | _F_WRITE),)),
    ))
    peer.ble.gatts_write(t, b"\x10\x20")
    peer.ble.gatts_write(h, b"\x33")
    peer.ble.gatts_write(desc, b"temp")
    peer.handles = (t, h, c)
    return peer


def _link(peer):
    return peer.events(1)[-1][0]  # the peripheral's handle of its latest link


def _pdus():
    return blesim.att_pdus(bluetooth.BLE())


async def _connect(aioble, pm, peer, secure=True):
    conn = await aioble.Device(*peer.advertise()).connect(timeout_ms=3000)
    if secure:
        await pm.secure(conn)
    return conn


async def _read_temp(pm, conn, cached=True):
    """(value, ATT PDUs of pm.services(), services) on this link."""
    n = _pdus()
    svcs = await pm.services(conn, cached=cached)
    took = _pdus() - n
    svc = [s for s in svcs if s.uuid == _SVC][0]
    ch = await svc.characteristic(_TEMP)
    return await ch.read(), took, svcs


async def _sc(svcs):
    """The Service Changed characteristic among the services."""
    for s in svcs:
        if s.uuid == bluetooth.UUID(0x1801):
            return await s.characteristic(bluetooth.UUID(0x2A05))


def _value_handle(ch):
    return int(str(ch).split()[2])  # aioble: "Characteristic: END VALUE PROPS UUID"


async def _layout(svcs):
    """str() of every service and characteristic: aioble prints their handles."""
    out = []
    for s in svcs:
        out.append(str(s))
        async for c in s.characteristics():
            out.append(str(c))
    return out


@timeout(120)
async def test_bonded_peer_reads_without_discovery_on_reconnect():
    aioble, pm, fl, _ = _pm()
    peer = _sensor()
    conn = await _connect(aioble, pm, peer)
    value, first, svcs = await _read_temp(pm, conn)
    eq(value, b"\x10\x20")
    assert first > 20, first  # discovery of GAP, GATT and two services, and the SC subscription
    eq([s.uuid for s in svcs], [bluetooth.UUID(0x1800), bluetooth.UUID(0x1801), _SVC, _U128])
    await conn.disconnect()
    await asyncio.sleep_ms(50)
    conn = await _connect(aioble, pm, peer)
    value, again, svcs = await _read_temp(pm, conn)
    eq((value, again), (b"\x10\x20", 0))
    # the objects are aioble's, with the handles the peripheral registered
    from aioble.client import ClientService, ClientCharacteristic

    svc = (await pm.services(conn, _U128))[0]
    assert isinstance(svc, ClientService)
    ch = await svc.characteristic(_C128)
    assert isinstance(ch, ClientCharacteristic)
    await ch.write(b"hi", response=True)
    eq(peer.ble.gatts_read(peer.handles[2]), b"hi")
    temp = await (await pm.services(conn, _SVC))[0].characteristic(_TEMP)
    dscs = []
    async for d in temp.descriptors():
        dscs.append((d.uuid, await d.read()))
    eq(dscs, [(bluetooth.UUID(0x2902), b"\x00\x00"), (_USER_DESC, b"temp")])
    n = _pdus()
    await temp.subscribe(notify=True)  # the cached CCCD: one write, no discovery
    eq(_pdus() - n, 2)
    peer.ble.gatts_notify(_link(peer), peer.handles[0], b"\x11\x22")
    eq(await temp.notified(timeout_ms=1000), b"\x11\x22")
    eq(await pm.services(conn, bluetooth.UUID(0x1234)), [])
    await conn.disconnect()


@timeout(120)
async def test_the_chunk_is_written_only_when_it_changes():
    aioble, pm, fl, events = _pm()
    peer = _sensor()
    conn = await _connect(aioble, pm, peer)
    await _read_temp(pm, conn)
    n = fl.bytes_programmed
    _, took, _ = await _read_temp(pm, conn, cached=False)  # rediscovered: the same database
    assert took > 20, took
    eq(fl.bytes_programmed, n)
    _, took, _ = await _read_temp(pm, conn)
    eq(took, 0)
    await conn.disconnect()


@timeout(120)
async def test_service_changed_drops_the_cache():
    aioble, pm, fl, _ = _pm()
    peer = _sensor()
    conn = await _connect(aioble, pm, peer)
    _, _, svcs = await _read_temp(pm, conn)
    sc = await _sc(svcs)
    cccd = await sc.descriptor(bluetooth.UUID(0x2902))
    eq(await cccd.read(), b"\x02\x00")  # services() subscribed to Service Changed
    # an indication of another characteristic leaves the cache alone
    peer.ble.gatts_indicate(_link(peer), peer.handles[1], b"\x01\x02")
    await asyncio.sleep_ms(50)
    eq((await _read_temp(pm, conn))[1], 0)
    peer.ble.gatts_indicate(_link(peer), _value_handle(sc), struct.pack("<HH", 0x0020, 0x0030))
    await asyncio.sleep_ms(50)
    value, took, _ = await _read_temp(pm, conn)
    assert took > 20, took  # discovered again
    eq(value, b"\x10\x20")
    await conn.disconnect()
    await asyncio.sleep_ms(50)
    # the indication came on another link, before services() was ever called there
    conn = await _connect(aioble, pm, peer)
    peer.ble.gatts_indicate(_link(peer), _value_handle(sc), struct.pack("<HH", 1, 0xFFFF))
    await asyncio.sleep_ms(50)
    assert (await _read_temp(pm, conn))[1] > 20
    await conn.disconnect()


@timeout(120)
async def test_service_changed_before_the_cache_was_loaded_after_a_reboot():
    aioble, pm, fl, _ = _pm()
    peer = _sensor()
    conn = await _connect(aioble, pm, peer)
    _, _, svcs = await _read_temp(pm, conn)
    h = _value_handle(await _sc(svcs))
    await conn.disconnect()
    await asyncio.sleep_ms(50)
    aioble2, pm2, _, _ = _pm(fl)  # a new manager on the same flash (as after a reboot)
    conn = await _connect(aioble, pm2, peer)
    peer.ble.gatts_indicate(_link(peer), h, struct.pack("<HH", 0x30, 0x40))
    await asyncio.sleep_ms(50)
    assert (await _read_temp(pm2, conn))[1] > 20
    await conn.disconnect()


@timeout(120)
async def test_unbonded_peer_is_never_stored():
    aioble, pm, fl, _ = _pm()
    peer = _sensor()
    conn = await _connect(aioble, pm, peer, secure=False)
    eq(pm.peer_id(conn), None)
    n = fl.bytes_programmed
    value, took, _ = await _read_temp(pm, conn)
    eq(value, b"\x10\x20")
    assert took > 20
    eq(fl.bytes_programmed, n)
    assert (await _read_temp(pm, conn))[1] > 20  # no cache: discovered again
    await conn.disconnect()


@timeout(120)
async def test_deleting_the_bond_or_forgetting_drops_the_cache():
    aioble, pm, fl, _ = _pm()
    peer = _sensor()
    conn = await _connect(aioble, pm, peer)
    await _read_temp(pm, conn)
    eq(pm.forget_services(0), True)
    eq(pm.forget_services(0), False)
    assert (await _read_temp(pm, conn))[1] > 20
    eq((await _read_temp(pm, conn))[1], 0)
    await conn.disconnect()
    await asyncio.sleep_ms(50)
    pm.delete(0)
    peer.forget_bonds()
    conn = await _connect(aioble, pm, peer)  # bonds again, as peer 0
    eq(pm.peer_id(conn), 0)
    assert (await _read_temp(pm, conn))[1] > 20
    await conn.disconnect()
    with raises(ValueError, "no peer"):
        pm.forget_services(5)


async def _with_chunk(edit):
    """Bond and cache, then replace the stored chunk with edit(chunk) through the ZMS
    API (the PM closed, as across a reboot) and reconnect: (value, PDUs, services)."""
    from aioble_pm import zms

    aioble, pm, fl, _ = _pm()
    peer = _sensor()
    conn = await _connect(aioble, pm, peer)
    _, _, want = await _read_temp(pm, conn)
    await conn.disconnect()
    await asyncio.sleep_ms(50)
    store = zms.ZMS(fl)
    rid = (0 << 16) | 5
    store.write(rid, edit(bytearray(store.read(rid))))
    del store
    aioble, pm2, _, events = _pm(fl)
    conn = await _connect(aioble, pm2, peer)
    out = await _read_temp(pm2, conn)
    eq(await _layout(out[2]), await _layout(want))
    again = (await _read_temp(pm2, conn))[1]
    await conn.disconnect()
    return out[0], out[1], again


def _reseal(edit):
    def f(chunk):
        body = bytearray(chunk[:-4])
        edit(body)
        return seal(body)

    return f


@timeout(120)
async def test_damaged_chunk_gives_a_clean_rediscovery():
    def flip(chunk):
        chunk[7] ^= 0x40
        return chunk

    value, took, again = await _with_chunk(flip)
    eq(value, b"\x10\x20")
    assert took > 20, took  # discovered, with the right handles
    eq(again, 0)  # and stored again


@timeout(120)
async def test_chunk_with_handles_out_of_order_gives_a_clean_rediscovery():
    def swap(body):  # the first service ends before it starts (CRC-32 still good)
        body[4], body[2] = body[2], body[4]
        body[2] += 5

    value, took, again = await _with_chunk(_reseal(swap))
    eq(value, b"\x10\x20")
    assert took > 20, took
    eq(again, 0)


@timeout(120)
async def test_truncated_chunk_gives_a_clean_rediscovery():
    value, took, again = await _with_chunk(_reseal(_bump_count))
    eq(value, b"\x10\x20")
    assert took > 20, took


@timeout(60)
async def test_bad_input_to_services():
    aioble, pm, fl, _ = _pm()
    peer = _sensor()
    conn = await _connect(aioble, pm, peer)
    with raises(TypeError, "conn must be an aioble DeviceConnection"):
        await pm.services(0)
    with raises(TypeError, "uuid must be a bluetooth.UUID"):
        await pm.services(conn, 0x181A)
    with raises(TypeError, "timeout_ms"):
        await pm.services(conn, timeout_ms="1")
    with raises(ValueError, "timeout_ms"):
        await pm.services(conn, timeout_ms=0)
    with raises(TypeError, "peer_id"):
        pm.forget_services("0")
    await conn.disconnect()
    await asyncio.sleep_ms(50)
    with raises(ValueError, "not connected"):
        await pm.services(conn)
