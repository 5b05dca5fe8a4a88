# Access control (aioble_pm/access.py): protect()/protect_flags() and their bad input;
# an aioble server whose protected characteristics and descriptors make a scripted central
# pair (pm.wait_secure: no Security Request), with NimBLE's ATT codes; read=AUTHORIZED
# and pm.authorize; an aioble client with pm.auto_secure reading, writing and subscribing
# in one call (and retrying once only); a peripheral's Security Request on our central
# link, reported and judged.
import asyncio
import bluetooth
import blesim
from mptest import need, eq, raises, timeout
from pmsim import Peer, until
from aioble_pm import flash

_SVC = bluetooth.UUID("7e5a0201-0000-4000-8000-00805f9b34fb")
_SECRET = bluetooth.UUID("7e5a0202-0000-4000-8000-00805f9b34fb")
_STRONG = bluetooth.UUID("7e5a0203-0000-4000-8000-00805f9b34fb")
_ASK = bluetooth.UUID("7e5a0204-0000-4000-8000-00805f9b34fb")
_OPEN = bluetooth.UUID("7e5a0205-0000-4000-8000-00805f9b34fb")
_DESC = bluetooth.UUID(0x2901)
_F_READ, _F_WRITE, _F_NOTIFY = 0x02, 0x08, 0x10
_READ_DONE, _WRITE_DONE = 16, 17


def _pm(**params):
    aioble = need("aioble")
    import aioble_pm

    pm = aioble_pm.PeerManager(flash.RamFlash(8 * 4096, 4096))
    events = []
    pm.register(events.append)
    pm.sec_params(**(params or {"bond": True}))
    pm.attach()
    return aioble, aioble_pm, pm, events


def _names(events):
    """The securing events, by name."""
    import aioble_pm as a

    names = {a.CONN_SEC_START: "CONN_SEC_START", a.CONN_SEC_SUCCEEDED: "CONN_SEC_SUCCEEDED",
             a.CONN_SEC_FAILED: "CONN_SEC_FAILED"}
    return [names[e.id] for e in events if e.id in names]


# --- flags and bad input -----------------------------------------------------------------

def test_protect_flags_maps_levels_to_the_binding_bits():
    import aioble_pm as a

    eq(a.protect_flags(_F_READ, read=a.ENCRYPTED), 0x0202)
    eq(a.protect_flags(_F_READ, read=a.AUTHENTICATED), 0x0402)
    eq(a.protect_flags(_F_READ, read=a.AUTHORIZED | a.ENCRYPTED), 0x0A02)
    eq(a.protect_flags(_F_WRITE, write=a.ENCRYPTED), 0x1008)
    eq(a.protect_flags(_F_READ | _F_WRITE, read=a.AUTHENTICATED, write=a.AUTHENTICATED), 0x240A)
    eq(a.protect_flags(0x240A), 0x000A)  # no levels: the old ones are removed
    with raises(ValueError, "unknown bits"):
        a.protect_flags(_F_READ, read=8)
    with raises(ValueError, "unknown bits"):
        a.protect_flags(_F_READ, read=-1)
    with raises(TypeError, "ENCRYPTED"):
        a.protect_flags(_F_READ, read="encrypted")
    with raises(TypeError, "flags"):
        a.protect_flags(None, read=1)
    with raises(ValueError, "cannot be read"):
        a.protect_flags(_F_WRITE, read=a.ENCRYPTED)
    with raises(ValueError, "cannot be written"):
        a.protect_flags(_F_READ, write=a.ENCRYPTED)
    with raises(ValueError, "write=AUTHORIZED cannot be enforced"):
        a.protect_flags(_F_WRITE, write=a.AUTHORIZED)


def test_protect_on_aioble_objects_and_its_bad_input():
    aioble, a, pm, _ = _pm()
    svc = aioble.Service(_SVC)
    ch = aioble.Characteristic(svc, _SECRET, read=True, write=True)
    assert a.protect(ch, read=a.ENCRYPTED, write=a.AUTHENTICATED) is ch
    eq(ch.flags, 0x220A)  # aioble's own READ|WRITE (0x0A) | READ_ENCRYPTED | WRITE_AUTHENTICATED
    d = aioble.Descriptor(ch, _DESC, read=True, write=True)
    with raises(ValueError, "descriptor writes cannot be protected"):
        a.protect(d, write=a.ENCRYPTED)
    a.protect(d, read=a.ENCRYPTED)
    eq(d.flags, 0x0A)  # the binding would drop the bits: the PM checks its reads
    with raises(TypeError, "Characteristic or Descriptor"):
        a.protect(svc, read=a.ENCRYPTED)
    with raises(ValueError, "unknown bits"):
        a.protect(ch, read=16)
    aioble.register_services(svc)
    with raises(RuntimeError, "before aioble.register_services"):
        a.protect(ch, read=a.AUTHENTICATED)
    eq(ch.flags, 0x220A)
    with raises(TypeError, "function"):
        pm.authorize(5)
    with raises(TypeError, "bool"):
        pm.auto_secure(1)


# --- server: a central that touches a protected attribute pairs -------------------------

def _server(aioble, a):
    svc = aioble.Service(_SVC)
    secret = a.protect(aioble.Characteristic(svc, _SECRET, read=True, write=True, initial=b"s3"), read=a.ENCRYPTED,
                       write=a.ENCRYPTED)
    desc = a.protect(aioble.Descriptor(secret, _DESC, read=True, initial=b"key"), read=a.ENCRYPTED)
    strong = a.protect(aioble.Characteristic(svc, _STRONG, read=True, initial=b"mitm"), read=a.AUTHENTICATED)
    ask = a.protect(aioble.Characteristic(svc, _ASK, read=True, initial=b"ok?"), read=a.AUTHORIZED)
    opened = aioble.Characteristic(svc, _OPEN, read=True, initial=b"hi")
    aioble.register_services(svc)
    return [x._value_handle for x in (secret, desc, strong, ask, opened)]


async def _central_reads(central, conn, handle):
    n = len(central.events(_READ_DONE))
    central.ble.gattc_read(conn, handle)
    await until(lambda: len(central.events(_READ_DONE)) > n, what="read done")
    status = central.events(_READ_DONE)[-1][2]
    got = [d for c, h, d in central.events(15) if h == handle]
    return status, (got[-1] if got and not status else None)


async def _accept(aioble, central):
    task = asyncio.create_task(aioble.advertise(20000, name="srv", timeout_ms=3000))
    await asyncio.sleep_ms(5)
    central.ble.gap_connect(*blesim.ota_addr(bluetooth.BLE()))
    server_conn = await task
    await until(lambda: central.events(7), what="central connected")
    return server_conn, central.events(7)[-1][0]


@timeout(60)
async def test_protected_attributes_make_an_unpaired_central_pair_then_succeed():
    aioble, a, pm, events = _pm()
    secret, desc, strong, ask, opened = _server(aioble, a)
    central = Peer("central")
    srv, conn = await _accept(aioble, central)
    eq(await _central_reads(central, conn, opened), (0, b"hi"))
    eq(await _central_reads(central, conn, secret), (0x105, None))  # not bonded: Insufficient Authentication
    eq(await _central_reads(central, conn, desc), (0x105, None))  # checked by the PM, same code
    eq(await _central_reads(central, conn, strong), (0x105, None))
    central.ble.gattc_write(conn, secret, b"xx", 1)
    await until(lambda: central.events(_WRITE_DONE), what="write done")
    eq(central.events(_WRITE_DONE)[-1][2], 0x105)
    eq(_names(events), [])  # touching protected attributes is no procedure
    waiting = asyncio.create_task(pm.wait_secure(srv, timeout_ms=5000))
    await asyncio.sleep_ms(300)
    assert not waiting.done()  # the PM sends no Security Request: it waits for the central
    central.ble.gap_pair(conn)
    eq(await waiting, 0)
    eq(_names(events), ["CONN_SEC_START", "CONN_SEC_SUCCEEDED"])
    eq(events[-1].procedure, a.PROC_BONDING)
    eq(await _central_reads(central, conn, secret), (0, b"s3"))
    eq(await _central_reads(central, conn, desc), (0, b"key"))
    eq(await _central_reads(central, conn, strong), (0x105, None))  # Just Works is not authenticated
    eq(await _central_reads(central, conn, ask), (0x108, None))  # no authorizer: nobody
    await srv.disconnect()
    await asyncio.sleep_ms(50)
    # bonded, reconnected, not encrypted yet: Insufficient Encryption (the central has the keys)
    srv, conn = await _accept(aioble, central)
    eq(await _central_reads(central, conn, secret), (0x10F, None))
    eq(await _central_reads(central, conn, desc), (0x10F, None))
    eq(len(_names(events)), 2)  # NimBLE's store read for the check starts no procedure
    central.ble.gap_pair(conn)
    eq(await pm.wait_secure(srv, timeout_ms=5000), 0)
    eq(events[-1].procedure, a.PROC_ENCRYPTION)
    eq(await _central_reads(central, conn, secret), (0, b"s3"))
    await srv.disconnect()


@timeout(60)
async def test_authorized_reads_ask_the_app_and_refuse_when_it_fails():
    aioble, a, pm, events = _pm()
    secret, desc, strong, ask, opened = _server(aioble, a)
    asked = []

    def allow(conn, peer_id, attr):
        asked.append((peer_id, attr.uuid))
        return len(asked) == 1

    pm.authorize(allow)
    central = Peer("central")
    srv, conn = await _accept(aioble, central)
    eq(await _central_reads(central, conn, ask), (0, b"ok?"))
    eq(await _central_reads(central, conn, ask), (0x108, None))
    eq(asked, [(None, _ASK), (None, _ASK)])

    def broken(conn, peer_id, attr):
        raise KeyError("bug")

    pm.authorize(broken)
    eq(await _central_reads(central, conn, ask), (0x108, None))
    pm.authorize(None)
    eq(await _central_reads(central, conn, ask), (0x108, None))
    eq(await _central_reads(central, conn, opened), (0, b"hi"))  # unguarded reads never ask
    eq(len(asked), 2)
    await srv.disconnect()


@timeout(60)
async def test_wait_secure_times_out_when_the_central_never_pairs():
    aioble, a, pm, events = _pm()
    _server(aioble, a)
    central = Peer("central")
    srv, conn = await _accept(aioble, central)
    from aioble_pm import SecurityError

    with raises(SecurityError, "no answer in 300 ms"):
        await pm.wait_secure(srv, timeout_ms=300)
    eq(central.events(31), [])
    await srv.disconnect()


# --- client: auto-secure ----------------------------------------------------------------

def _peripheral(**cfg):
    import aioble_pm as a

    peer = Peer("sensor", **cfg)
    ((secret, strong, plain),) = peer.ble.gatts_register_services((
        (_SVC, ((_SECRET, a.protect_flags(_F_READ | _F_WRITE | _F_NOTIFY, read=a.ENCRYPTED, write=a.ENCRYPTED)),
                (_STRONG, a.protect_flags(_F_READ, read=a.AUTHENTICATED)),
                (_OPEN, _F_READ))),))
    peer.ble.gatts_write(secret, b"s3")
    peer.ble.gatts_write(strong, b"mitm")
    peer.handles = (secret, strong, plain)
    return peer


async def _connect(aioble, peer):
    return await aioble.Device(*peer.advertise()).connect(timeout_ms=3000)


async def _chars(pm, conn):
    svc = (await pm.services(conn, _SVC))[0]
    out = []
    for u in (_SECRET, _STRONG, _OPEN):  # (MicroPython: no await in a comprehension)
        out.append(await svc.characteristic(u))
    return out


@timeout(60)
async def test_auto_secure_reads_writes_and_subscribes_in_one_call():
    aioble, a, pm, events = _pm()
    peer = _peripheral()
    conn = await _connect(aioble, peer)
    secret, strong, plain = await _chars(pm, conn)
    with raises(aioble.GattError):  # off by default: aioble's own behaviour
        await secret.read()
    eq(_names(events), [])
    pm.auto_secure(True)
    eq(await secret.read(), b"s3")
    eq(_names(events), ["CONN_SEC_START", "CONN_SEC_SUCCEEDED"])
    eq(pm.peer_id(conn), 0)
    await secret.write(b"new", response=True)
    eq(peer.ble.gatts_read(peer.handles[0]), b"new")
    await conn.disconnect()
    await asyncio.sleep_ms(50)
    # reconnected: the write fails with Insufficient Encryption and re-encrypts
    conn = await _connect(aioble, peer)
    secret, strong, plain = await _chars(pm, conn)
    await secret.write(b"again", response=True)
    eq(peer.ble.gatts_read(peer.handles[0]), b"again")
    eq(events[-1].procedure, a.PROC_ENCRYPTION)
    await conn.disconnect()
    await asyncio.sleep_ms(50)
    conn = await _connect(aioble, peer)
    secret, strong, plain = await _chars(pm, conn)
    await secret.subscribe(notify=True)  # CCCDs carry no permission in NimBLE: no error, no securing
    n = len(events)
    peer.ble.gatts_notify(peer.events(1)[-1][0], peer.handles[0], b"n1")
    eq(await secret.notified(timeout_ms=1000), b"n1")
    eq(await plain.read(), b"")
    eq(len(events), n)
    pm.auto_secure(False)
    with raises(aioble.GattError):
        await secret.read()
    await conn.disconnect()


@timeout(60)
async def test_auto_secure_retries_once_and_never_loops():
    aioble, a, pm, events = _pm()
    peer = _peripheral()
    pm.auto_secure(True)
    conn = await _connect(aioble, peer)
    secret, strong, plain = await _chars(pm, conn)
    with raises(aioble.GattError) as e:  # Just Works cannot authenticate: one securing, one retry
        await strong.read()
    eq(_names(events), ["CONN_SEC_START", "CONN_SEC_SUCCEEDED"])
    with raises(aioble.GattError):  # encrypted and good enough for the PM: no second procedure
        await strong.read()
    eq(len(_names(events)), 2)
    await conn.disconnect()


@timeout(60)
async def test_auto_secure_raises_the_security_error_when_securing_fails():
    aioble, a, pm, events = _pm(bond=True, mitm=True, io=1)  # IO_DISPLAY_YESNO
    from aioble_pm import SecurityError

    peer = _peripheral()
    pm.auto_secure(True)
    conn = await _connect(aioble, peer)
    secret, strong, plain = await _chars(pm, conn)
    with raises(SecurityError, "needs a passkey"):  # a MicroPython central cannot do MITM pairing
        await secret.read()
    await conn.disconnect()


# --- central: the peripheral's Security Request -----------------------------------------

@timeout(60)
async def test_security_request_on_our_central_link_is_a_reported_procedure():
    aioble, a, pm, events = _pm()
    peer = _peripheral()
    conn = await _connect(aioble, peer)
    peer.ble.gap_pair(peer.events(1)[-1][0])  # the peripheral asks; our host answers by itself
    await until(lambda: len(_names(events)) >= 2, what="securing reported")
    eq(_names(events), ["CONN_SEC_START", "CONN_SEC_SUCCEEDED"])
    eq((events[-1].procedure, pm.peer_ids()), (a.PROC_BONDING, [0]))
    eq(await pm.secure(conn), 0)  # the link is secured: no new procedure
    eq(len(_names(events)), 2)
    await conn.disconnect()


@timeout(60)
async def test_security_request_pairing_below_our_parameters_is_refused():
    aioble, a, pm, events = _pm(bond=True, mitm=True, io=1)  # the peripheral has no IO: Just Works
    peer = _peripheral()
    conn = await _connect(aioble, peer)
    peer.ble.gap_pair(peer.events(1)[-1][0])
    await until(lambda: "CONN_SEC_FAILED" in _names(events), what="refused")
    eq(_names(events), ["CONN_SEC_START", "CONN_SEC_FAILED"])
    eq(pm.peer_ids(), [])
    await until(lambda: not conn.is_connected(), what="link dropped")


@timeout(60)
async def test_two_links_at_once_each_get_their_own_answer():
    aioble, a, pm, events = _pm()
    secret, desc, strong, ask, opened = _server(aioble, a)
    pm.authorize(lambda conn, peer_id, attr: peer_id is not None)
    one, two = Peer("one"), Peer("two")
    srv1, c1 = await _accept(aioble, one)
    srv2, c2 = await _accept(aioble, two)
    one.ble.gap_pair(c1)
    eq(await pm.wait_secure(srv1, timeout_ms=5000), 0)
    eq(await _central_reads(one, c1, secret), (0, b"s3"))
    eq(await _central_reads(one, c1, desc), (0, b"key"))
    eq(await _central_reads(one, c1, ask), (0, b"ok?"))  # bonded: the authorizer says yes
    eq(await _central_reads(two, c2, secret), (0x105, None))  # the other link is still open
    eq(await _central_reads(two, c2, desc), (0x105, None))
    eq(await _central_reads(two, c2, ask), (0x108, None))
    await srv1.disconnect()
    await srv2.disconnect()
