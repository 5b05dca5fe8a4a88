# Peer Manager scenarios on the BLE simulator at the raw `bluetooth` level (the same PM
# code aioble uses; tests/mp_aioble_pm.py and test_aioble_pm.py run it under aioble).
import os
import json
import binascii
import blesim
import aioble_pm
from aioble_pm import privacy, nimble, peers, flash
from aioble_pm import SecurityError
from mptest import raises, eq, timeout, heapsize
from pmsim import PM, Peer, until, connect, accept, disconnect, bond, gone, blob, cut_bonding


def records(pm):
    """A ZMS mounted on a copy of pm's flash (the PM's own store stays untouched)."""
    from aioble_pm.zms import ZMS

    return ZMS(flash.RamFlash.from_image(pm.flash.image(), 4096))


def rec_ids(pm):
    return sorted(records(pm).ids())


async def central_answers(peer, action, value):
    """The central answers its own passkey action without an IRQ (a MicroPython central
    never gets _IRQ_PASSKEY_ACTION): retry until its stack takes the answer."""
    import asyncio

    conn = peer.events(7)[-1][0]
    for _ in range(400):
        try:
            peer.ble.gap_passkey(conn, action, value)
            return
        except OSError:
            await asyncio.sleep_ms(5)
    raise AssertionError("the central's stack never asked for action %d" % action)


@timeout(120)
async def test_bond_reboot_reencrypt_and_resolve():
    a = PM()
    irk_before = a.ble.own_irk()
    b = Peer("phone")
    h = await connect(a, b)
    eq(a.pm.peer_id(h), None)
    pid = await a.pm.secure(h)
    eq(pid, 0)
    ok = a.ids(aioble_pm.CONN_SEC_SUCCEEDED)
    eq([(e.conn, e.peer_id, e.procedure) for e in ok], [(h, 0, aioble_pm.PROC_BONDING)])
    eq(a.pm.peer_ids(), [0])
    info = a.pm.peer(0)
    eq((info.addr_type, info.addr), b.identity())
    assert info.irk and info.sc and info.complete and info.connected and info.key_size == 16
    for text in (repr(info), repr(a.pm), repr(ok[0])):
        assert "ltk" not in text.lower()
    await disconnect(a, h)

    a = a.reboot()  # same flash, stack state gone
    eq(a.ble.own_irk(), irk_before, "our IRK is a record in the store: stable across reboots")
    # (NimBLE restores the peer IRKs, then load_irk's own IRK clears the resolving list:
    # the PM's resolver recognises the peer behind its RPA either way)
    programmed = a.flash.bytes_programmed
    b.ble.config(addr_mode=2)  # the phone now uses RPAs
    h = await connect(a, b)
    eq([e.peer_id for e in a.ids(aioble_pm.BONDED_PEER_CONNECTED)], [0])
    eq(a.pm.peer_id(h), 0)
    eq(await a.pm.secure(h), 0)
    eq(a.ids(aioble_pm.CONN_SEC_SUCCEEDED)[-1].procedure, aioble_pm.PROC_ENCRYPTION)
    assert a.flash.bytes_programmed - programmed <= 16, "no secret written again (at most a rank ATE)"
    rpa = blesim.ota_addr(b.ble)[1]
    eq(privacy.kind(1, rpa), privacy.KIND_RPA)
    eq(a.pm.resolve(1, rpa), 0)
    eq(a.pm.resolve(*b.identity()), 0)
    eq(a.pm.resolve(1, privacy.rpa(os.urandom(16))), None)


@timeout(120)
async def test_first_bond_over_an_rpa_in_both_nimble_orders():
    # upstream NimBLE: ENCRYPTION_UPDATE, then the keys; esp-nimble (88-byte layout): keys first
    for layout in (80, 88):
        a = PM(layout=layout)
        phone = Peer("phone")
        phone.ble.config(addr_mode=2)
        h = await connect(a, phone)
        eq(privacy.kind(*a.connects()[-1][1:]), privacy.KIND_RPA, "the connect IRQ carries the RPA")
        eq(await a.pm.secure(h), 0)
        eq([(e.peer_id, e.procedure) for e in a.ids(aioble_pm.CONN_SEC_SUCCEEDED)], [(0, aioble_pm.PROC_BONDING)])
        eq((a.pm.peer(0).addr_type, a.pm.peer(0).addr), phone.identity(), "identity from the keys")
        eq(a.pm.peer_id(h), 0)
        assert a.pm.peer(0).complete
        await disconnect(a, h)
        h = await connect(a, phone)
        eq(await a.pm.secure(h), 0)
        eq(a.ids(aioble_pm.CONN_SEC_SUCCEEDED)[-1].procedure, aioble_pm.PROC_ENCRYPTION, layout)


@timeout(120)
async def test_delete_one_and_all_then_pair_again():
    a = PM()
    peers_ = [Peer("p%d" % i) for i in range(3)]
    for p in peers_:
        await bond(a, p)
    eq(a.pm.peer_ids(), [0, 1, 2])
    a.pm.delete(1)
    eq([e.peer_id for e in a.ids(aioble_pm.PEER_DELETE_SUCCEEDED)], [1])
    eq(a.pm.peer_ids(), [0, 2])
    assert not [r for r in rec_ids(a) if r >> 16 == 1], "every record of peer 1 deleted"
    with raises(ValueError, "no peer"):
        a.pm.peer(1)
    # the deleted peer must pair again (it still holds its old bond: repeat pairing)
    h = await connect(a, peers_[1])
    eq(a.pm.peer_id(h), None)
    eq(await a.pm.secure(h), 1)
    eq(a.ids(aioble_pm.CONN_SEC_SUCCEEDED)[-1].procedure, aioble_pm.PROC_BONDING)
    await disconnect(a, h)
    a.pm.delete_all()
    eq(a.pm.peer_ids(), [])
    eq(len(a.ids(aioble_pm.PEERS_DELETE_SUCCEEDED)), 1)
    eq([r for r in rec_ids(a) if r >> 16 < 0xFFF0], [])
    a = a.reboot()
    eq(a.pm.peer_ids(), [])


@timeout(120)
async def test_peer_lost_its_bond_gives_a_clear_error():
    a = PM()
    b = Peer()
    await bond(a, b)
    b.forget_bonds()  # the peer deleted its bond with us
    h = await connect(a, b)
    with raises(SecurityError, "key missing") as e:
        await a.pm.secure(h)
    eq(e.value.reason, SecurityError.KEY_MISSING)
    fail = a.ids(aioble_pm.CONN_SEC_FAILED)[-1]
    eq((fail.conn, fail.peer_id, fail.error.reason), (h, 0, SecurityError.KEY_MISSING))
    eq(a.pm.peer_ids(), [0], "our bond is kept; the app decides (delete and pair again)")
    a.pm.delete(0)
    eq(await a.pm.secure(h), 0, "pairs again at once: a lost key is not a failed pairing attempt")


async def _bond_n(a, n):
    out = []
    for i in range(n):
        p = Peer("p%d" % i)
        h = await connect(a, p)
        try:
            out.append(await a.pm.secure(h))
        except SecurityError as e:
            out.append(e)
        await disconnect(a, h)
    return out


@timeout(120)
async def test_full_store_evicts_least_recently_used():
    a = PM(max_peers=2, when_full=aioble_pm.EVICT_LRU)
    p0, p1 = Peer("p0"), Peer("p1")
    for p in (p0, p1):
        await bond(a, p)
    h = await connect(a, p0)  # p0 used again: p1 is now the least recently used
    await a.pm.secure(h)
    await disconnect(a, h)
    assert a.pm.peer(0).rank > a.pm.peer(1).rank, "ranks follow use"
    p2 = Peer("p2")
    h = await connect(a, p2)
    eq(await a.pm.secure(h), 1, "the freed ID")
    eq([e.peer_id for e in a.ids(aioble_pm.PEER_EVICTED)], [1])
    eq(a.pm.peer(1).addr, p2.identity()[1])
    eq(a.pm.peer(0).addr, p0.identity()[1])


@timeout(120)
async def test_full_store_rejects_new_bonds():
    for layout in (80, 88):
        a = PM(max_peers=2, when_full=aioble_pm.REJECT, layout=layout)
        got = await _bond_n(a, 3)
        eq(got[:2], [0, 1])
        assert isinstance(got[2], SecurityError) and got[2].reason == SecurityError.STORAGE_FULL, got[2]
        eq(len(a.ids(aioble_pm.STORAGE_FULL)), 1)
        eq(a.pm.peer_ids(), [0, 1])
        eq(a.ids(aioble_pm.CONN_SEC_FAILED)[-1].error.reason, SecurityError.STORAGE_FULL)
        eq(len(a.ids(aioble_pm.CONN_SEC_SUCCEEDED)), 2, "never reported as secured")
        a = a.reboot(max_peers=2, when_full=aioble_pm.REJECT)
        eq(a.pm.peer_ids(), [0, 1], "the earlier bonds are intact")


def _passkey_pms(pm_io, peer_io, sc=True):
    """A PM peripheral and a central peer with these IO capabilities, MITM on both."""
    a = PM(params={"mitm": True, "io": pm_io, "lesc": sc})
    b = Peer(mitm=True, io=peer_io, le_secure=sc)
    return a, b


@timeout(120)
async def test_passkey_request_right_and_wrong():
    import asyncio

    for right in (True, False):
        # we type (keyboard+display responder), the central displays (display-only initiator)
        a, b = _passkey_pms(aioble_pm.IO_KEYBOARD_DISPLAY, aioble_pm.IO_DISPLAY_ONLY)
        a.pm.register(lambda ev: ev.id == aioble_pm.PASSKEY_REQUEST and a.pm.passkey_reply(ev.conn, 246810 if right else 13579))
        h = await accept(a, b)
        shows = asyncio.create_task(central_answers(b, 3, 246810))
        if right:
            eq(await a.pm.secure(h), 0)
            assert a.pm.peer(0).authenticated
        else:
            with raises(SecurityError) as e:
                await a.pm.secure(h)
            eq(e.value.reason, SecurityError.PASSKEY)
            eq(a.pm.peer_ids(), [])
        await shows
        eq(len(a.ids(aioble_pm.PASSKEY_REQUEST)), 1)


@timeout(60)
async def test_unanswered_passkey_request_times_out():
    import asyncio

    a, b = _passkey_pms(aioble_pm.IO_KEYBOARD_DISPLAY, aioble_pm.IO_DISPLAY_ONLY)
    a.pm.passkey_timeout_ms = 300  # nobody answers PASSKEY_REQUEST
    h = await accept(a, b)
    shows = asyncio.create_task(central_answers(b, 3, 246810))
    with raises(SecurityError, "no answer to the passkey request") as e:
        await a.pm.secure(h)
    eq(e.value.reason, SecurityError.PASSKEY)
    await shows
    await until(lambda: gone(a, h), what="the link dropped")
    eq(a.pm.peer_ids(), [])


@timeout(120)
async def test_passkey_display():
    # we display (display-only responder), the central types (keyboard-only initiator)
    a, b = _passkey_pms(aioble_pm.IO_DISPLAY_ONLY, aioble_pm.IO_KEYBOARD_ONLY)
    import asyncio

    shown = []
    a.pm.register(lambda ev: ev.id == aioble_pm.PASSKEY_DISPLAY and shown.append(ev.passkey))
    h = await accept(a, b)
    task = asyncio.create_task(a.pm.secure(h))
    await until(lambda: shown, what="PASSKEY_DISPLAY")
    await central_answers(b, 2, shown[0])  # the user types what we show
    eq(await task, 0)
    eq(len(shown), 1)
    assert 0 <= shown[0] <= 999999
    assert a.pm.peer(0).authenticated


@timeout(120)
async def test_numeric_comparison_accept_and_reject():
    import asyncio

    for ok in (True, False):
        a, b = _passkey_pms(aioble_pm.IO_DISPLAY_YESNO, aioble_pm.IO_DISPLAY_YESNO)

        def answer(ev):
            if ev.id == aioble_pm.NUMERIC_COMPARISON:
                assert 0 <= ev.passkey <= 999999
                a.pm.numcmp_reply(ev.conn, ok)

        a.pm.register(answer)
        h = await accept(a, b)
        yes = asyncio.create_task(central_answers(b, 4, 1))  # the central's user says yes
        if ok:
            eq(await a.pm.secure(h), 0)
            await yes
        else:
            with raises(SecurityError) as e:
                await a.pm.secure(h)
            eq(e.value.reason, SecurityError.NUMCMP)
            yes.cancel()


@timeout(120)
async def test_mitm_enforced_and_disconnect_handler():
    a = PM(params={"mitm": True, "io": aioble_pm.IO_KEYBOARD_DISPLAY})
    a.pm.register(a.pm.disconnect_on_failure)
    b = Peer(io=aioble_pm.IO_NO_INPUT_OUTPUT)  # Just Works: unauthenticated
    h = await accept(a, b)
    with raises(SecurityError) as e:
        await a.pm.secure(h)
    eq(e.value.reason, SecurityError.NOT_AUTHENTICATED)
    await until(lambda: gone(a, h), what="the refused link dropped")
    eq(a.pm.peer_ids(), [], "a bond below the security parameters is not kept")


@timeout(60)
async def test_pairing_without_bonding():
    a = PM(params={"bond": False})
    b = Peer(bond=False)
    h = await connect(a, b)
    eq(await a.pm.secure(h), None, "paired, no bond: no peer ID")
    eq(a.ids(aioble_pm.CONN_SEC_SUCCEEDED)[-1].procedure, aioble_pm.PROC_PAIRING)
    eq(a.pm.peer_ids(), [])


@timeout(120)
async def test_sc_only_refuses_legacy_pairing():
    for bond in (True, False):
        a = PM(params={"sc_only": True, "bond": bond})
        b = Peer(le_secure=False, bond=bond)  # a legacy-only peer
        h = await connect(a, b)
        with raises(SecurityError) as e:
            await a.pm.secure(h)
        eq(e.value.reason, SecurityError.NOT_SC)
        eq(a.pm.peer_ids(), [], "no legacy bond kept")
    a = PM(params={"sc_only": True})
    h = await connect(a, Peer())
    eq(await a.pm.secure(h), 0, "LE Secure Connections bonds pass")


@timeout(120)
async def test_unrecognised_repairing_goes_through_the_policy():
    # The stack does not resolve the central's RPA (its resolving list lost the entry,
    # as a controller with few slots does); the PM recognises the peer by its own
    # resolver, and the pairing that follows is a re-pairing the app must allow.
    for allow in (False, True):
        a, c = await _bonded_as_peripheral(allow)
        c.ble.config(addr_mode=2)
        blesim.resolving_list_size(a.ble, 0)  # a controller with no room for the peer's IRK
        c.forget_bonds()
        h = await accept(a, c)
        eq(privacy.kind(*a.connects()[-1][1:]), privacy.KIND_RPA)
        eq(a.pm.peer_id(h), 0, "recognised by the PM's resolver")
        want = aioble_pm.CONN_SEC_SUCCEEDED if allow else aioble_pm.CONN_SEC_FAILED
        before = len(a.ids(want))
        c.ble.gap_pair(c.events(7)[-1][0])
        await until(lambda: len(a.ids(want)) > before, what="the outcome")
        eq([e.peer_id for e in a.ids(aioble_pm.CONN_SEC_CONFIG_REQ)], [0])
        eq(a.pm.peer_ids(), [0])


@timeout(60)
async def test_key_size_enforced():
    a = PM(params={"min_key_size": 12})
    b = Peer()
    h = await connect(a, b)
    # NimBLE always negotiates 16; feed the PM the encryption update a 7-byte peer gives
    a.pm.irq(28, (h, 1, 0, 0, 7))
    eq(a.ids(aioble_pm.CONN_SEC_FAILED)[-1].error.reason, SecurityError.KEY_SIZE)


@timeout(120)
async def test_pairing_disabled_by_sec_params_none():
    for layout in (80, 88):
        await _pairing_disabled(layout)


async def _pairing_disabled(layout):
    a = PM(layout=layout)
    b = Peer()
    h = await connect(a, b)
    await a.pm.secure(h)  # a bond made while pairing was allowed
    await disconnect(a, h)
    a.pm.sec_params(None)
    h = await connect(a, b)
    eq(await a.pm.secure(h), 0, "stored bonds still re-encrypt")
    c = Peer("stranger")
    h2 = await connect(a, c)
    with raises(SecurityError, "pairing is disabled"):
        await a.pm.secure(h2)
    # a stranger that starts pairing itself gets no bond stored
    d = Peer("pushy")
    h3 = await accept(a, d)
    d.ble.gap_pair(d.events(7)[-1][0])
    await until(lambda: a.ids(aioble_pm.CONN_SEC_FAILED), what="CONN_SEC_FAILED")
    eq(a.pm.peer_ids(), [0])
    eq(a.ids(aioble_pm.CONN_SEC_FAILED)[-1].error.reason, SecurityError.REJECTED)


@timeout(120)
async def test_repeated_attempts_protection():
    import asyncio

    a, b = _passkey_pms(aioble_pm.IO_KEYBOARD_DISPLAY, aioble_pm.IO_DISPLAY_ONLY)
    a.pm.register(lambda ev: ev.id == aioble_pm.PASSKEY_REQUEST and a.pm.passkey_reply(ev.conn, 222222))
    h = await accept(a, b)
    shows = asyncio.create_task(central_answers(b, 3, 111111))
    with raises(SecurityError, "passkey"):
        await a.pm.secure(h)
    await shows
    with raises(SecurityError, "repeated attempts") as e:
        await a.pm.secure(h)
    eq(e.value.reason, SecurityError.REPEATED_ATTEMPTS)


async def _bonded_as_peripheral(allow, layout=80):
    a = PM(layout=layout)
    if allow is not None:
        a.pm.register(lambda ev: ev.id == aioble_pm.CONN_SEC_CONFIG_REQ and ev.allow(allow))
    c = Peer("central")
    h = await accept(a, c)
    eq(await a.pm.secure(h), 0)  # peripheral: a Security Request, the central pairs
    await disconnect(a, h)
    return a, c


@timeout(120)
async def test_repairing_denied_keeps_the_bond():
    for layout in (80, 88):
        await _repairing_denied(layout)


async def _repairing_denied(layout):
    a, c = await _bonded_as_peripheral(None, layout)
    c.forget_bonds()  # the central lost its keys and pairs again
    h = await accept(a, c)
    drops = len(c.events(8))
    c.ble.gap_pair(c.events(7)[-1][0])
    await until(lambda: a.ids(aioble_pm.CONN_SEC_FAILED), what="CONN_SEC_FAILED")
    eq([e.peer_id for e in a.ids(aioble_pm.CONN_SEC_CONFIG_REQ)], [0])
    eq(a.ids(aioble_pm.CONN_SEC_FAILED)[-1].error.reason, SecurityError.REJECTED)
    await until(lambda: len(c.events(8)) > drops, what="the central dropped")
    eq(a.pm.peer_ids(), [0])
    eq(len(a.pm.irq(29, (nimble.SEC_OUR, 0, nimble.addr_key(*c.identity())))), layout, "old bond intact")
    a2 = a.reboot()
    eq(a2.pm.peer_ids(), [0])
    assert a2.pm.peer(0).complete


@timeout(120)
async def test_repairing_allowed_keeps_the_peer_id_and_app_data():
    for layout in (80, 88):
        await _repairing_allowed(layout)


async def _repairing_allowed(layout):
    a, c = await _bonded_as_peripheral(True, layout)
    a.pm.set_app_data(0, b"settings")
    old = records(a).read(peers.record_id(0, peers.DATA_OUR_SEC))
    c.forget_bonds()
    h = await accept(a, c)
    c.ble.gap_pair(c.events(7)[-1][0])
    await until(lambda: a.ids(aioble_pm.CONN_SEC_SUCCEEDED)[1:], what="CONN_SEC_SUCCEEDED")
    eq(a.ids(aioble_pm.CONN_SEC_SUCCEEDED)[-1].peer_id, 0)
    eq(a.pm.peer_ids(), [0])
    assert records(a).read(peers.record_id(0, peers.DATA_OUR_SEC)) != old, "new keys stored"
    eq(a.pm.app_data(0), b"settings")


@timeout(120)
async def test_damaged_bond_record_does_not_stop_the_boot():
    a = PM()
    ps = [Peer("p%d" % i) for i in range(3)]
    for p in ps:
        await bond(a, p)
    # damage peer 1's PEER_SEC record (key || value) on the flash
    rec = records(a).read(peers.record_id(1, peers.DATA_PEER_SEC))
    image = a.flash.image()
    off = image.find(rec)
    assert off > 0
    a.flash.poke(off + 30, bytes([image[off + 30] ^ 0xFF]))
    b = a.reboot()
    eq(b.pm.peer_ids(), [0, 1, 2], "peer 1 still known through its OUR_SEC record")
    eq(b.pm.peer(1).addr, ps[1].identity()[1])
    # and with both of its secrets damaged it is dropped, the others stay
    rec = records(b).read(peers.record_id(1, peers.DATA_OUR_SEC))
    off = b.flash.image().find(rec)
    b.flash.poke(off + 30, bytes([b.flash.image()[off + 30] ^ 0xFF]))
    c = b.reboot()
    eq(c.pm.peer_ids(), [0, 2])
    eq(c.pm.dropped, [1])


@timeout(60)
async def test_links_are_forgotten_when_the_stack_restarts():
    a = PM()
    b = Peer()
    h = await connect(a, b)
    await a.pm.secure(h)
    eq(a.pm.peer_id(h), 0)
    a.ble.active(False)  # no disconnect IRQs while the stack stops (modbluetooth_nimble.c)
    a.ble.active(True)  # NimBLE asks for our IRK again: the PM drops its links
    eq(a.pm.peer_id(h), None)
    assert a.pm.peer(0).connected is False


@timeout(60)
async def test_resolver_follows_deletes_and_securing_fails_on_disconnect():
    a = PM()
    b = Peer()
    await bond(a, b)
    irk = bytes(reversed(b.store[(10, b"irk")]))
    rpa = privacy.rpa(irk)
    eq(a.pm.resolve(1, rpa), 0)
    a.pm.delete(0)
    eq(a.pm.resolve(1, rpa), None, "the resolver follows the delete")
    # a peer that vanishes in the middle of a pairing
    c = Peer(io=aioble_pm.IO_DISPLAY_ONLY, mitm=True)
    a.pm.sec_params(mitm=True, io=aioble_pm.IO_KEYBOARD_DISPLAY)
    h = await accept(a, c)
    import asyncio

    task = asyncio.create_task(a.pm.secure(h))
    await until(lambda: a.ids(aioble_pm.PASSKEY_REQUEST), what="PASSKEY_REQUEST")
    c.ble.gap_disconnect(c.events(7)[-1][0])
    with raises(SecurityError) as e:
        await task
    # NimBLE fails the pairing (an encryption update without encryption) as the link
    # breaks, then reports the disconnect: the cause is the lost link
    eq(e.value.reason, SecurityError.DISCONNECTED)
    assert a.ids(aioble_pm.CONN_SEC_FAILED)


@timeout(60)
async def test_half_stored_new_bond_is_dropped_with_the_link():
    a = PM()
    b = Peer()
    h = await connect(a, b)
    key = nimble.addr_key(*b.identity())
    value = bytearray(80)
    value[0:7] = key
    value[7] = 16
    # the stack stored OUR_SEC of a new bond, then the link broke before PEER_SEC
    eq(a.pm.irq(30, (nimble.SEC_OUR, key, bytes(value))), True)
    eq(a.pm.peer_ids(), [0])
    assert not a.pm.peer(0).complete
    await disconnect(a, h)
    eq(a.pm.peer_ids(), [], "a new bond with one secret does not outlive its link")
    eq([r for r in rec_ids(a) if r >> 16 < 0xFFF0], [])


def test_internal_errors_become_events_not_exceptions():
    a = PM()
    key = bytes([0, 1, 2, 3, 4, 5, 6])
    eq(a.pm.irq(30, (2, key, blob(key))), True)

    def broken(*args):
        raise RuntimeError("flash on fire")

    a.flash.read = broken  # the flash adapter fails in a way no layer expects
    # the IRQ returns, it does not raise; and it answers "not found" (b""), not None, which
    # would let aioble's own store answer for a bond the PM holds or hides
    eq(a.pm.irq(29, (2, 0, None)), b"")
    eq([type(e.error) for e in a.ids(aioble_pm.ERROR_UNEXPECTED)], [RuntimeError])
    a.flash.program = broken
    eq(a.pm.irq(30, (1, key, blob(key))), False, "a write that fails is 'not stored'")
    eq(len(a.ids(aioble_pm.ERROR_UNEXPECTED)), 2)


def _json_store(path, entries):
    with open(path, "w") as f:
        json.dump([[t, binascii.b2a_base64(k).decode(), binascii.b2a_base64(v).decode()] for t, k, v in entries], f)


def test_migrates_aioble_json_once():
    irk = os.urandom(16)
    peer_key = bytes([0, 6, 5, 4, 3, 2, 1])
    value = bytearray(80)
    value[0:7] = peer_key
    value[7] = 16
    value[40] = 1
    value[41:57] = os.urandom(16)
    value[57] = 1
    _json_store("ble_secrets.json", [(10, b"irk", irk), (1, peer_key, bytes(value)), (2, peer_key, bytes(value))])
    a = PM()
    eq(a.pm.peer_ids(), [0])
    eq(a.pm.peer(0).addr, bytes([1, 2, 3, 4, 5, 6]))
    eq(a.ble.own_irk(), bytes(reversed(irk)), "our IRK from the JSON file")
    assert "ble_secrets.json" not in os.listdir() and "ble_secrets.json.migrated" in os.listdir()
    eq(a.pm.migrate(), 0, "nothing left to import")
    with open("ble_secrets.json", "w") as f:
        f.write("[[1, broken")
    eq(a.pm.migrate(), 0)
    assert "ble_secrets.json" in os.listdir(), "a file we cannot parse is left alone"


@timeout(300)
@heapsize("8m")  # (flash images copied per step: a 32-bit build's default heap runs out)
async def test_power_cut_at_every_flash_operation_during_bonding():
    # Bond one peer, count the flash operations a second bonding takes, then redo the
    # second bonding with the power cut before each of them (and partway through each
    # program): the store mounts and the first bond is intact every time.
    from aioble_pm.zms import ZMS

    fl = flash.RamFlash(4 * 4096, 4096)
    a = PM(fl=fl)
    first = Peer("first")
    await bond(a, first)
    blesim.reboot(a.ble)
    base = fl.image()
    second = Peer("second")

    probe = flash.RamFlash.from_image(base, 4096)
    await cut_bonding(probe, second)
    n_ops = probe.ops
    assert n_ops >= 5, n_ops
    eq(peers.PeerDB(ZMS(probe)).ids(), [0, 1])
    tried = 0
    for k in range(n_ops):
        for partial in (None, 8):
            fl = flash.RamFlash.from_image(base, 4096)
            fl.cut_after(k, partial)
            await cut_bonding(fl, second)
            fl.power_on()
            db = peers.PeerDB(ZMS(fl))
            assert 0 in db, "first bond lost at cut %d" % k
            eq(db.identity(0), first.identity())
            assert db.has_secret(0, nimble.SEC_OUR) and db.has_secret(0, nimble.SEC_PEER)
            assert db.ids() in ([0], [0, 1]), db.ids()
            tried += 1
    print("power cuts tried during a bonding:", tried, "over", n_ops, "flash operations")


def test_bad_input_everywhere():
    a = PM()
    with raises(ValueError, "max_peers"):
        aioble_pm.PeerManager(flash.RamFlash(FLASH_SIZE_SMALL, 4096), max_peers=0)
    with raises(ValueError, "when_full"):
        aioble_pm.PeerManager(flash.RamFlash(FLASH_SIZE_SMALL, 4096), when_full=7)
    with raises(TypeError, "peer_id"):
        a.pm.peer("0")
    with raises(ValueError, "no peer"):
        a.pm.peer(0)
    with raises(ValueError, "no peer"):
        a.pm.delete(99)
    with raises(ValueError, "no peer"):
        a.pm.app_data(-1)
    with raises(ValueError, "no peer"):
        a.pm.set_app_data(3, b"x")
    with raises(ValueError, "no peer"):
        a.pm.rank_highest(5)
    with raises(ValueError, "skip"):
        a.pm.peer_ids(skip=8)
    eq(a.pm.peer_id(1234), None)
    with raises(ValueError, "not connected"):
        import asyncio

        asyncio.run(a.pm.secure(77))
    with raises(ValueError, "not connected"):
        a.pm.passkey_reply(77, 123456)
    with raises(ValueError, "passkey"):
        a.pm.passkey_reply(77, 1000000)
    with raises(TypeError, "passkey"):
        a.pm.passkey_reply(77, "123456")
    with raises(ValueError, "min_key_size"):
        a.pm.sec_params(min_key_size=6)
    with raises(ValueError, "oob requires mitm"):
        a.pm.sec_params(oob=True)
    with raises(ValueError, "addr"):
        a.pm.resolve(1, b"\x00")
    with raises(ValueError, "addr_type"):
        a.pm.resolve(4, bytes(6))
    with raises(TypeError):
        a.pm.register(42)
    # the secret IRQs never raise, whatever the stack hands over
    eq(a.pm.irq(29, (2, 0, b"\x00" * 3)), b"", "not found (and no handler after ours answers)")
    eq(a.pm.irq(29, (7, 0, None)), None)
    eq(a.pm.irq(30, (2, b"\x00" * 3, bytes(80))), False)
    eq(a.pm.irq(30, (3, bytes(7), bytes(16))), False)
    eq(a.pm.irq(30, (2, bytes(7), None)), False, "deleting an unknown peer: not found")
    eq(a.pm.irq(30, (2, bytes([0, 1, 2, 3, 4, 5, 6]), bytes(200))), False, "too long")
    eq(a.pm.irq(30, (2, bytes([0, 1, 2, 3, 4, 5, 6]), b"odd layout")), True, "kept verbatim")
    eq(bytes(a.pm.irq(29, (2, 0, bytes([0, 1, 2, 3, 4, 5, 6])))), b"odd layout")
    eq(a.pm.irq(28, (999, 1, 1, 1, 16)), None, "unknown connection")
    eq(a.ids(aioble_pm.ERROR_UNEXPECTED), [])



def test_secret_longer_than_the_store_buffer_is_served_whole():
    # A record written by something else (a future NimBLE layout, a tool): the PM keeps it
    # verbatim and answers it in full (its read buffer grows), and the 128-byte values it
    # stores itself come back exactly.
    from aioble_pm.zms import ZMS

    fl = flash.RamFlash(8 * 4096, 4096)
    key = bytes([0, 1, 2, 3, 4, 5, 6])
    long_value = bytes(range(170))  # (longer than the start-up read buffer too)
    z = ZMS(fl)
    z.write(peers.record_id(0, peers.DATA_PEER_SEC), key + long_value)
    z.write(peers.record_id(0, peers.DATA_OUR_SEC), key + long_value[0:40])  # (a whole bond)
    a = PM(fl=fl)
    eq(a.pm.peer_ids(), [0])
    eq(bytes(a.pm.irq(29, (2, 0, None))), long_value, "by index")
    eq(bytes(a.pm.irq(29, (2, 0, key))), long_value, "by key")
    key2 = bytes([0, 9, 9, 9, 9, 9, 9])
    eq(a.pm.irq(30, (2, key2, bytes(range(128)))), True)
    eq(bytes(a.pm.irq(29, (2, 0, key2))), bytes(range(128)))
    eq(a.ids(aioble_pm.ERROR_UNEXPECTED), [])

FLASH_SIZE_SMALL = 2 * 4096
