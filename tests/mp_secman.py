# The security manager's promises on the BLE simulator (issue 11): a link that fails its
# judgement never counts as secure, bonds are judged before they cost another bond,
# keys are matched to the right link, each procedure is reported once with its real
# cause, and the peripheral's Security Request policy.
import asyncio
import micropython
import time
import blesim
import aioble_pm as E
from aioble_pm import nimble, SecurityError
from mptest import raises, eq, timeout
from pmsim import PM, Peer, Spy, until, connect, accept, disconnect, bond, gone, blob


async def _bonded_as_peripheral(allow=None, layout=80):
    a = PM(layout=layout)
    if allow is not None:
        a.pm.register(lambda ev: ev.id == E.CONN_SEC_CONFIG_REQ and ev.allow(allow))
    c = Peer("central")
    h = await accept(a, c)
    eq(await a.pm.secure(h), 0)
    await disconnect(a, h)
    return a, c


@timeout(120)
async def test_link_failing_its_judgement_is_dropped_and_never_secured():
    # sc_only: a legacy link is judged NOT_SC; a second secure() must not succeed on it
    a = PM(params={"sc_only": True})
    h = await connect(a, Peer(le_secure=False))
    with raises(SecurityError, "legacy"):
        await a.pm.secure(h)
    try:
        await a.pm.secure(h)
        raise AssertionError("secure() succeeded on a link that failed its judgement")
    except SecurityError as e:
        eq(e.reason, SecurityError.NOT_SC)
    except ValueError as e:
        assert "not connected" in str(e), e  # already dropped
    await until(lambda: gone(a, h), what="the judged link dropped")
    # a pairing the peer starts on its own while pairing is disabled (no bond to refuse)
    a = PM()
    a.pm.sec_params(None)
    c = Peer("nobond", bond=False)
    h = await accept(a, c)
    c.ble.gap_pair(c.events(7)[-1][0])
    await until(lambda: a.ids(E.CONN_SEC_FAILED), what="CONN_SEC_FAILED")
    await until(lambda: gone(a, h), what="the link paired while pairing is disabled dropped")
    # a legacy central that pairs on its own under sc_only
    a = PM(params={"sc_only": True})
    c = Peer("legacy", le_secure=False)
    h = await accept(a, c)
    c.ble.gap_pair(c.events(7)[-1][0])
    await until(lambda: a.ids(E.CONN_SEC_FAILED), what="CONN_SEC_FAILED")
    eq(a.ids(E.CONN_SEC_FAILED)[-1].error.reason, SecurityError.NOT_SC)
    await until(lambda: gone(a, h), what="the legacy link dropped")
    eq(a.pm.peer_ids(), [])


@timeout(120)
async def test_unreadable_bond_is_reported_damaged_not_reencrypted():
    for allow in (False, True):
        a = PM()
        if allow:
            a.pm.register(lambda ev: ev.id == E.CONN_SEC_CONFIG_REQ and ev.allow())
        p = Peer()
        await bond(a, p)
        a.pm.set_app_data(0, b"app")
        key = nimble.addr_key(*p.identity())
        img = a.flash.image()
        off = img.find(key + key)  # record = key || value, and the value opens with the key
        assert off >= 0
        while off >= 0:
            a.flash.poke(off + 40, bytes([img[off + 40] ^ 0xFF]))
            off = img.find(key + key, off + 1)
        h = await connect(a, p)
        if allow:
            eq(await a.pm.secure(h), 0, "paired again under the same peer ID")
            eq(a.pm.app_data(0), b"app")
            eq(a.ids(E.CONN_SEC_SUCCEEDED)[-1].procedure, E.PROC_BONDING)
        else:
            with raises(SecurityError) as e:
                await a.pm.secure(h)
            eq(e.value.reason, SecurityError.DAMAGED)
            eq(a.pm.peer_ids(), [0], "the app's policy decides; the peer stays")
        eq([ev.procedure for ev in a.ids(E.CONN_SEC_SUCCEEDED)][:2], [E.PROC_BONDING] * (1 + allow),
           "never reported as re-encrypted with stored keys")
        eq(a.ids(E.CONN_SEC_CONFIG_REQ)[-1].error.reason, SecurityError.DAMAGED)


@timeout(60)
async def test_unreadable_bond_as_peripheral_is_reported_damaged():
    # the central encrypts with its keys; our LTK is unreadable, so NimBLE answers the
    # LTK request negatively and raises nothing on our side: secure() says why at its end
    a, c = await _bonded_as_peripheral()
    key = nimble.addr_key(*c.identity())
    img = a.flash.image()
    off = img.find(key + key)
    while off >= 0:
        a.flash.poke(off + 40, bytes([img[off + 40] ^ 0xFF]))
        off = img.find(key + key, off + 1)
    h = await accept(a, c)
    with raises(SecurityError) as e:
        await a.pm.secure(h, timeout_ms=1500)
    eq(e.value.reason, SecurityError.DAMAGED)


@timeout(60)
async def test_half_stored_bond_is_removed_at_start_up():
    a = PM()
    key = bytes([0, 1, 2, 3, 4, 5, 6])
    eq(a.pm.irq(30, (nimble.SEC_OUR, key, blob(key))), True)  # then the power went
    eq(a.pm.peer_ids(), [0])
    b = a.reboot()
    eq(b.pm.peer_ids(), [], "a bond that never completed does not block the peer")
    eq(b.pm.dropped, [0])


@timeout(120)
async def test_two_first_pairings_at_once_with_rpa_peers():
    for layout in (80, 88):
        a = PM(layout=layout)
        ps = [Peer("r%d" % i) for i in range(2)]
        for p in ps:
            p.ble.config(addr_mode=2)
        hs = []
        for p in ps:
            hs.append(await connect(a, p))
        got = await asyncio.gather(*(a.pm.secure(h) for h in hs))
        eq(sorted(got), [0, 1], "layout %d" % layout)
        for h, p, pid in zip(hs, ps, got):
            eq(a.pm.peer_id(h), pid)
            eq(a.pm.peer(pid).addr, p.identity()[1])
    # and bonds below the security parameters are refused on both links
    a = PM(params={"sc_only": True})
    ps = [Peer("l%d" % i, le_secure=False) for i in range(2)]
    for p in ps:
        p.ble.config(addr_mode=2)
    hs = []
    for p in ps:
        hs.append(await connect(a, p))
    got = await asyncio.gather(*(a.pm.secure(h) for h in hs), return_exceptions=True)
    eq([getattr(g, "reason", g) for g in got], [SecurityError.NOT_SC] * 2)
    eq(a.pm.peer_ids(), [])


@timeout(120)
async def test_eviction_waits_until_the_new_bond_is_accepted():
    a = PM(max_peers=1, when_full=E.EVICT_LRU, params={"sc_only": True})
    p0 = Peer("p0")
    await bond(a, p0)
    h = await connect(a, Peer("legacy", le_secure=False))
    with raises(SecurityError) as e:
        await a.pm.secure(h)
    eq(e.value.reason, SecurityError.NOT_SC)
    eq(a.pm.peer_ids(), [0])
    eq(a.pm.peer(0).addr, p0.identity()[1], "the good bond is kept")
    eq(a.ids(E.PEER_EVICTED), [])


def test_numcmp_reply_takes_only_a_bool():
    a = PM()
    for bad in ("no", 0, 1, None):
        with raises(TypeError, "accept"):
            a.pm.numcmp_reply(77, bad)


@timeout(60)
async def test_second_secure_on_a_link_shares_the_result():
    a = PM()
    h = await connect(a, Peer())
    t1 = asyncio.create_task(a.pm.secure(h))
    await asyncio.sleep_ms(0)
    t2 = asyncio.create_task(a.pm.secure(h))
    got = await asyncio.wait_for_ms(asyncio.gather(t1, t2), 5000)
    eq(got, [0, 0])
    eq(len(a.ids(E.CONN_SEC_START)), 1)


@timeout(60)
async def test_gap_pair_failure_closes_the_procedure():
    spy = Spy(blesim.device("pm"))
    a = PM(ble=spy)
    h = await connect(a, Peer())
    spy.fail = OSError(12)
    with raises(SecurityError, "gap_pair"):
        await a.pm.secure(h)
    eq(len(a.ids(E.CONN_SEC_START)), len(a.ids(E.CONN_SEC_FAILED)), "every START is closed")
    spy.fail = None
    eq(await a.pm.secure(h), 0)
    await disconnect(a, h)
    eq([ev.error.reason for ev in a.ids(E.CONN_SEC_FAILED)], [SecurityError.REJECTED],
       "no failure reported for a procedure that never ran")


@timeout(60)
async def test_second_link_of_a_bonded_peer_stays_idle():
    a = PM()
    p = Peer()
    await bond(a, p)
    h1 = await connect(a, p)  # we connect to it ...
    h2 = await accept(a, p)  # ... and it connects to us
    eq(a.pm.peer_id(h2), 0)
    n = len(a.ids(E.CONN_SEC_START))
    eq(await a.pm.secure(h1), 0)
    await disconnect(a, h2)
    eq([ev.conn for ev in a.ids(E.CONN_SEC_START)[n:]], [h1])
    eq(a.ids(E.CONN_SEC_FAILED), [])


@timeout(60)
async def test_secure_checks_timeout_ms_first():
    a = PM()
    p = Peer()
    h = await connect(a, p)
    with raises(TypeError, "timeout_ms"):
        await a.pm.secure(h, timeout_ms="5")
    with raises(ValueError, "timeout_ms"):
        await a.pm.secure(h, timeout_ms=0)
    eq(a.ids(E.CONN_SEC_START), [])
    eq(p.events(28), [], "no pairing started")


@timeout(120)
async def test_refused_repairing_reports_the_bonded_peer():
    for layout in (80, 88):
        a, c = await _bonded_as_peripheral(None, layout)
        c.forget_bonds()
        h = await accept(a, c)
        c.ble.gap_pair(c.events(7)[-1][0])
        await until(lambda: a.ids(E.CONN_SEC_FAILED), what="CONN_SEC_FAILED")
        eq(a.ids(E.CONN_SEC_FAILED)[-1].peer_id, 0, "layout %d" % layout)


@timeout(60)
async def test_accepted_comparison_then_the_peer_vanishes_is_disconnected():
    a = PM(params={"mitm": True, "io": E.IO_DISPLAY_YESNO})
    a.pm.register(lambda ev: ev.id == E.NUMERIC_COMPARISON and a.pm.numcmp_reply(ev.conn, True))
    c = Peer(mitm=True, io=E.IO_DISPLAY_YESNO)  # never answers its own comparison
    h = await accept(a, c)
    task = asyncio.create_task(a.pm.secure(h))
    await until(lambda: a.ids(E.NUMERIC_COMPARISON), what="NUMERIC_COMPARISON")
    await asyncio.sleep_ms(20)
    c.ble.gap_disconnect(c.events(7)[-1][0])
    with raises(SecurityError) as e:
        await task
    eq(e.value.reason, SecurityError.DISCONNECTED)
    eq(a.ids(E.CONN_SEC_FAILED)[-1].error.reason, SecurityError.DISCONNECTED)


@timeout(60)
async def test_pairing_disabled_refuses_an_allowed_repairing_and_keeps_the_bond():
    # sec_params(None): no pairing at all, also not a re-pairing the app would allow
    a, c = await _bonded_as_peripheral(allow=True)
    before = bytes(a.pm.irq(29, (nimble.SEC_PEER, 0, None)))
    a.pm.sec_params(None)
    c.forget_bonds()
    h = await accept(a, c)
    c.ble.gap_pair(c.events(7)[-1][0])
    await until(lambda: a.ids(E.CONN_SEC_FAILED), what="CONN_SEC_FAILED")
    await until(lambda: gone(a, h), what="the refused link dropped")
    eq(a.pm.peer_ids(), [0])
    eq(bytes(a.pm.irq(29, (nimble.SEC_PEER, 0, None))), before, "the old bond's keys are kept")


@timeout(60)
async def test_cancelled_secure_does_not_strand_the_other_caller():
    a = PM()
    c = Peer("deaf")
    h = await accept(a, c)
    blesim.ignore_security_requests(c.ble, 1)  # the procedure stays open
    first = asyncio.create_task(a.pm.secure(h, timeout_ms=20000))
    await asyncio.sleep_ms(50)
    second = asyncio.create_task(a.pm.secure(h, timeout_ms=20000))
    await asyncio.sleep_ms(50)
    first.cancel()
    t0 = time.ticks_ms()
    with raises(SecurityError) as e:
        await asyncio.wait_for_ms(second, 3000)
    eq(e.value.reason, SecurityError.TIMEOUT)
    assert time.ticks_diff(time.ticks_ms(), t0) < 3000


@timeout(60)
async def test_fast_path_judges_sc_only_like_a_new_procedure():
    # an encrypted legacy link, then the app asks for sc_only: secure() must not succeed
    a = PM()
    h = await connect(a, Peer(le_secure=False))
    eq(await a.pm.secure(h), 0)
    a.pm.sec_params(bond=True, sc_only=True)
    with raises(SecurityError) as e:
        await a.pm.secure(h)
    eq(e.value.reason, SecurityError.NOT_SC)


def test_unknown_layout_never_costs_a_judged_bond():
    # EVICT_LRU evicts only for a bond it judged; a secret it cannot parse cannot be judged
    a = PM(max_peers=1)
    k0, k1 = bytes([0, 1, 2, 3, 4, 5, 6]), bytes([0, 9, 9, 9, 9, 9, 9])
    eq(a.pm.irq(30, (nimble.SEC_PEER, k0, blob(k0))), True)
    eq(a.pm.irq(30, (nimble.SEC_OUR, k0, blob(k0))), True)
    eq(a.pm.irq(30, (nimble.SEC_PEER, k1, bytes(50))), False, "no free ID: refused, not evicting")
    eq(a.pm.peer_ids(), [0])
    eq(a.ids(E.PEER_EVICTED), [])


@timeout(60)
async def test_rejected_comparison_fails_at_once():
    # real NimBLE: the side that rejects gets no IRQ (the peer gets ENCRYPTION_UPDATE(0)),
    # so the PM must end the procedure itself, not wait for the peer to give up
    a = PM(params={"mitm": True, "io": E.IO_DISPLAY_YESNO})
    a.pm.register(lambda ev: ev.id == E.NUMERIC_COMPARISON and a.pm.numcmp_reply(ev.conn, False))
    c = Peer(mitm=True, io=E.IO_DISPLAY_YESNO)
    h = await accept(a, c)
    with raises(SecurityError) as e:
        await a.pm.secure(h, timeout_ms=5000)
    eq(e.value.reason, SecurityError.NUMCMP)
    eq([ev.error.reason for ev in a.ids(E.CONN_SEC_FAILED)], [SecurityError.NUMCMP], "reported once")
    eq(a.pm.peer_ids(), [])
    await until(lambda: c.events(28), what="the peer's failed pairing")
    eq(c.events(28)[-1][1], 0)


@timeout(120)
async def test_hidden_bond_does_not_end_the_by_index_iteration():
    a, c = await _bonded_as_peripheral(None)
    p = Peer("second")
    eq(await bond(a, p), 1)
    seen = []

    def probe(ev):
        if ev.id == E.CONN_SEC_FAILED and not seen:  # peer 0 is hidden from the stack now
            seen.append([bytes(a.pm.irq(29, (nimble.SEC_PEER, i, None))) for i in range(2)])

    a.pm.register(probe)
    c.forget_bonds()
    h = await accept(a, c)
    c.ble.gap_pair(c.events(7)[-1][0])
    await until(lambda: seen, what="the refused re-pairing")
    first, second = seen[0]
    assert first, "index 0 must be the next visible peer, not 'not found'"
    eq(nimble.parse_sec(first).addr, p.identity()[1])
    eq(second, b"")


@timeout(60)
async def test_half_bond_dropped_when_encryption_fails():
    a = PM()
    b = Peer()
    h = await connect(a, b)
    key = nimble.addr_key(*b.identity())
    eq(a.pm.irq(30, (nimble.SEC_OUR, key, blob(key))), True)
    a.pm.irq(28, (h, 0, 0, 0, 0))  # the pairing failed after OUR_SEC was stored
    await disconnect(a, h)
    eq(a.pm.peer_ids(), [])


@timeout(60)
async def test_refused_link_dropped_even_when_the_schedule_queue_is_full():
    a = PM()
    a.pm.sec_params(None)
    s = Peer("stranger")
    h = await connect(a, s)
    key = nimble.addr_key(*s.identity())
    out = []

    def inside(_):  # scheduled callbacks do not run while one runs: the queue stays full
        try:
            for _ in range(64):
                micropython.schedule(lambda _: None, 0)
        except RuntimeError:
            pass
        out.append(a.pm.irq(30, (nimble.SEC_OUR, key, blob(key))))

    micropython.schedule(inside, 0)
    await until(lambda: out, what="the refused write")
    eq(out, [False])
    await until(lambda: gone(a, h), what="the refused link dropped")


def test_migration_beyond_max_peers_is_reported_not_evicting():
    import os
    from mp_manager import _json_store

    entries = [(10, b"irk", os.urandom(16))]
    for i in range(3):
        k = bytes([0, 6, 5, 4, 3, 2, 1 + i])
        entries += [(1, k, blob(k)), (2, k, blob(k))]
    _json_store("ble_secrets.json", entries)
    a = PM(max_peers=2)
    eq(a.pm.peer_ids(), [0, 1])
    eq(a.ids(E.PEER_EVICTED), [], "migration never evicts")
    eq([e.addr for e in a.ids(E.STORAGE_FULL)], [(0, bytes([3, 2, 3, 4, 5, 6]))])


def test_bad_input_names_the_argument():
    import asyncio
    from aioble_pm import flash

    with raises(TypeError, "flash"):
        E.PeerManager(42)
    with raises(TypeError, "bdev"):
        flash.BlockDevFlash(None)
    with raises(TypeError, "path"):
        flash.FileFlash(None, 8 * 4096)
    with raises(TypeError, "max_peers"):
        E.PeerManager(flash.RamFlash(2 * 4096, 4096), max_peers="8")
    a = PM()
    with raises(TypeError, "conn"):
        asyncio.run(a.pm.secure("x"))
    with raises(TypeError, "conn"):
        a.pm.peer_id([1])
    with raises(TypeError, "limit"):
        a.pm.whitelist(limit="1")
    with raises(TypeError, "device_privacy"):
        a.pm.whitelist(device_privacy=1)
    with raises(ValueError, "device_privacy"):
        a.pm.whitelist(device_privacy=[9])
    with raises(TypeError, "wl"):
        a.pm.scan(None)


@timeout(60)
async def test_central_pairing_that_needs_a_passkey_fails_at_once():
    a = PM(params={"mitm": True, "io": E.IO_KEYBOARD_DISPLAY})
    b = Peer(mitm=True, io=E.IO_DISPLAY_ONLY)
    h = await connect(a, b)
    with raises(SecurityError, "PASSKEY_ACTION") as e:
        await a.pm.secure(h)
    eq(e.value.reason, SecurityError.UNSUPPORTED)
    eq(b.events(28), [], "no pairing started")


@timeout(60)
async def test_peripheral_waits_for_a_central_that_encrypts_itself():
    spy = Spy(blesim.device("pm"))
    a = PM(ble=spy)
    c = Peer("ios")
    h = await accept(a, c)
    c.ble.gap_pair(c.events(7)[-1][0])
    await until(lambda: a.ids(E.CONN_SEC_SUCCEEDED), what="the first bond")
    await disconnect(a, h)
    h = await accept(a, c)
    task = asyncio.create_task(a.pm.secure(h))
    await asyncio.sleep_ms(20)
    c.ble.gap_pair(c.events(7)[-1][0])  # it encrypts on reconnect by itself, as iOS does
    eq(await task, 0)
    eq(a.ids(E.CONN_SEC_SUCCEEDED)[-1].procedure, E.PROC_ENCRYPTION)
    eq(spy.pairs, [], "no Security Request into the central's own encryption")


@timeout(60)
async def test_security_request_repeated_while_nothing_happens_on_smp():
    # The central's host drops the first request. NimBLE (as blesim) refuses the
    # repeats with EALREADY while that request's SMP procedure lives (30 s,
    # ble_sm_slave_initiate), so the link stays unencrypted; the PM keeps asking with
    # back-off and ends at secure()'s timeout, not SMP's.
    spy = Spy(blesim.device("pm"))
    a = PM(ble=spy)
    c = Peer("busy")
    h = await accept(a, c)
    blesim.ignore_security_requests(c.ble, 1)
    with raises(SecurityError) as e:
        await a.pm.secure(h, timeout_ms=6000)
    eq(e.value.reason, SecurityError.TIMEOUT)
    # requests at 250, 750, 1750 and 3750 ms: three by 1750 leaves seconds to spare on a busy machine
    assert len(spy.pairs) >= 3, spy.pairs
    eq(len(a.ids(E.CONN_SEC_START)), 1)
