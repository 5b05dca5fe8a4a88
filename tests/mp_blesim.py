# Raw `bluetooth`-API tests of the simulator (no aioble): devices in one process,
# stepped with blesim.pump()/advance(); a dict plays the Python secret store.
import bluetooth
import blesim
import dictstore
from blesim import layout
from bluetooth import UUID
from mptest import raises, eq

_SVC = UUID(0x180F)
_CHR = UUID(0x2A19)
_DSC = UUID(0x2901)
_F = bluetooth.FLAG_READ | bluetooth.FLAG_WRITE | bluetooth.FLAG_NOTIFY | bluetooth.FLAG_INDICATE


class Dev:
    """A device plus a log of its IRQs and a dict secret store like aioble's."""

    def __init__(self, name, ble=None, layout_size=80, store=None, refuse=False, **cfg):
        self.ble = ble or blesim.device(name, layout=layout_size)
        self.log = []
        self.store = {} if store is None else store
        self.refuse = refuse
        self.passkey = None
        self.ble.irq(self.irq)
        self.ble.active(True)
        if cfg:
            self.ble.config(**cfg)

    def irq(self, ev, data):
        self.log.append((ev, tuple(bytes(x) if isinstance(x, memoryview) else x for x in data)))
        if ev in (29, 30):
            return dictstore.answer(self.store, ev, data, self.refuse)
        if ev == 31 and self.passkey is not None:
            self.passkey(data)

    def events(self, ev):
        return [d for e, d in self.log if e == ev]

    def mac(self):
        return self.ble.config("mac")


def _pair_up(a, b, **cfg):
    """a (central) connects to b (peripheral advertising); returns the two handles."""
    b.ble.gap_advertise(20000, b"\x02\x01\x06")
    t, addr = blesim.ota_addr(b.ble)
    na, nb = len(a.events(7)), len(b.events(1))
    a.ble.gap_connect(t, addr)
    blesim.run_until(lambda: len(a.events(7)) > na and len(b.events(1)) > nb)
    return a.events(7)[-1][0], b.events(1)[-1][0]


def _wait(dev, ev, n=1):
    blesim.run_until(lambda: len(dev.events(ev)) >= n)


def test_activation_loads_own_irk_and_restores_peer_irks():
    a = Dev("a")
    eq([e for e, _ in a.log], [29, 29, 30], "iterate PEER_SEC, get IRK, set IRK (no second iteration)")
    eq(a.log[1][1], (10, 0, b"irk"))
    irk = a.store[(10, b"irk")]
    eq(len(irk), 16)
    # next activation: the stored IRK is used, and peer IRKs come back from PEER_SEC
    peer = layout.Sec(0, b"\x11\x22\x33\x44\x55\x66")
    peer.irk = bytes(range(16))
    store = {(10, b"irk"): irk, (2, layout.key(0, peer.addr)): layout.pack(peer, 80)}
    b = Dev("b", store=store)
    eq([e for e, _ in b.log], [29, 29, 29], "iterate (hit, miss), then the IRK")
    eq(b.ble.own_irk(), bytes(reversed(irk)))
    # ble_hs_pvcy_set_our_irk: the stored IRK differs from the default one, so the list
    # the iteration filled is cleared again, and nothing restores it (this NimBLE pin)
    eq(blesim.resolving_list(b.ble), [])


def test_store_refusing_own_irk_keeps_nimble_default():
    d = Dev("r", refuse=True)
    eq([e for e, _ in d.log], [29, 29, 30], "no second iteration without a stored IRK")
    eq(d.ble.own_irk()[-1], 0xEF)  # ble_hs_pvcy_default_irk, reversed


def test_config_params_and_errors():
    ble = blesim.device("c")
    with raises(OSError) as e:
        ble.config("mac")
    eq(e.value.args[0], 19)
    with raises(OSError):
        ble.config(addr_mode=1)
    ble.active(True)
    with raises(ValueError, "unknown config param"):
        ble.config("rxbuf")  # sync-events builds (pairing enabled) have no rxbuf
    with raises(ValueError, "unknown config param"):
        ble.config(bogus=1)
    with raises(TypeError, "must query one param"):
        ble.config()
    with raises(TypeError, "pos and kw"):
        ble.config("mtu", mtu=100)
    eq(ble.config("mtu"), 256)
    with raises(OSError):
        ble.config(mtu=22)
    ble.config(gap_name="sim")
    eq(ble.config("gap_name"), b"sim")
    with raises(OSError):
        ble.config(gap_name="x" * 32)
    ble.config(bond=True, mitm=True, io=4, le_secure=False)
    t, a = ble.config("mac")
    eq(t, 0)
    ble.config(addr_mode=1)
    t1, a1 = ble.config("mac")
    eq((t1, a1[0] >> 6), (1, 3), "random static")
    ble.config(addr_mode=2)
    with raises(OSError):
        ble.config("mac")  # NimBLE cannot report the current RPA
    with raises(ValueError, "invalid handler"):
        ble.irq(5)


def test_irqs_run_later_not_inside_the_call():
    a, b = Dev("a"), Dev("b")
    b.ble.gap_advertise(20000, b"\x02\x01\x06")
    a.ble.gap_scan(0)
    n = len(a.log)
    a.ble.gap_scan(None)  # scan stop reports SCAN_DONE synchronously, as MicroPython does
    eq(a.log[n:], [(6, ())])
    t, addr = b.mac()
    a.ble.gap_connect(t, addr)
    assert not a.events(7) and not b.events(1)
    blesim.pump()
    eq(a.events(7), [(1, t, addr)])
    eq(b.events(1), [(1, 0, a.mac()[1])])


def test_scan_results_types_and_done():
    a, b, c = Dev("a"), Dev("b"), Dev("c")
    b.ble.gap_advertise(100000, b"\x02\x01\x06", resp_data=b"\x04\x09abc")
    c.ble.gap_advertise(100000, b"\x02\x01\x04", connectable=False)
    a.ble.gap_scan(1000, 30000, 30000, True)
    blesim.pump()
    res = {(d[1], d[2]): d for d in a.events(5)}
    tb, ab = b.mac()
    eq(res[(ab, 0)], (tb, ab, 0, -50, b"\x02\x01\x06"), "ADV_IND")
    eq(res[(ab, 4)][4], b"\x04\x09abc", "SCAN_RSP in an active scan")
    eq(res[(c.mac()[1], 2)][2], 2, "non-connectable: ADV_SCAN_IND")
    assert not a.events(6)
    blesim.advance(1000)
    eq(len(a.events(6)), 1)
    n = len(a.events(5))
    blesim.advance(500)
    eq(len(a.events(5)), n, "no results after the scan ended")


def test_memoryviews_are_only_valid_during_the_call():
    kept = []
    a, b = Dev("a"), Dev("b")
    a.ble.irq(lambda ev, data: kept.append(data[1]) if ev == 5 else a.irq(ev, data))
    b.ble.gap_advertise(20000, b"\x02\x01\x06")
    a.ble.gap_scan(100)
    blesim.pump()
    assert kept and bytes(kept[0]) != b.mac()[1]


def test_connect_disconnect_and_timeout():
    a, b = Dev("a"), Dev("b")
    ha, hb = _pair_up(a, b)
    assert a.ble.gap_disconnect(ha)
    assert not a.ble.gap_disconnect(99)
    _wait(a, 8)
    _wait(b, 2)
    eq(b.events(2)[0], (hb, 0, a.mac()[1]))
    a.ble.gap_connect(0, b"\x01\x02\x03\x04\x05\x06", 300)
    blesim.advance(400)
    eq(a.events(8)[-1], (0xFFFF, 0xFF, bytes(6)))


def _gatt_pair():
    a, b = Dev("a"), Dev("b")
    ((h, hd),) = b.ble.gatts_register_services(((_SVC, ((_CHR, _F, ((_DSC, bluetooth.FLAG_READ),)),)),))
    ha, hb = _pair_up(a, b)
    return a, b, h, hd, ha, hb


def test_gatt_discovery_read_write_notify_indicate():
    a, b, h, hd, ha, hb = _gatt_pair()
    eq(hd, h + 2, "value, CCCD, then the app's descriptor")
    a.ble.gattc_discover_services(ha)
    _wait(a, 10)
    eq([d[3] for d in a.events(9)], [UUID(0x1800), UUID(0x1801), _SVC])
    start, end = a.events(9)[2][1:3]
    a.ble.gattc_discover_characteristics(ha, start, end)
    with raises(OSError):
        a.ble.gattc_discover_characteristics(ha, start, end)  # one at a time: EBUSY
    _wait(a, 12)
    eq(a.events(11), [(ha, end, h, _F & 0xFF, _CHR)])
    a.ble.gattc_discover_descriptors(ha, h, end)
    _wait(a, 14)
    eq([d[1:] for d in a.events(13)], [(h + 1, UUID(0x2902)), (hd, _DSC)])
    b.ble.gatts_write(h, b"v1")
    a.ble.gattc_read(ha, h)
    _wait(a, 16)
    eq((a.events(15), a.events(16)), ([(ha, h, b"v1")], [(ha, h, 0)]))
    eq(b.events(4), [(hb, h)])
    a.ble.gattc_write(ha, h, b"x" * 30, 1)  # buffers are 20 bytes unless gatts_set_buffer
    _wait(a, 17)
    eq(b.events(3), [(hb, h)])
    eq(b.ble.gatts_read(h), b"x" * 20)
    a.ble.gattc_write(ha, h + 1, b"\x01\x00", 1)  # subscribe: no GATTS_WRITE for a CCCD
    _wait(a, 17, 2)
    eq(len(b.events(3)), 1)
    b.ble.gatts_write(h, b"upd", True)
    b.ble.gatts_indicate(hb, h, b"ind")
    _wait(a, 19)
    _wait(b, 20)
    eq(a.events(18), [(ha, h, b"upd")])
    eq(a.events(19), [(ha, h, b"ind")])
    eq(b.events(20), [(hb, h, 0)])
    b.ble.gatts_set_buffer(h, 8, True)
    a.ble.gattc_write(ha, h, b"ab")
    a.ble.gattc_write(ha, h, b"cd")
    _wait(b, 3, 3)
    eq(b.ble.gatts_read(h), b"abcd")
    eq(b.ble.gatts_read(h), b"", "append buffers empty on read")


def test_read_request_denied_and_mtu():
    a, b, h, hd, ha, hb = _gatt_pair()
    b.ble.irq(lambda ev, data: 2 if ev == 4 else b.irq(ev, data))
    a.ble.gattc_read(ha, h)
    _wait(a, 16)
    eq(a.events(16), [(ha, h, 0x102)])
    eq(a.events(15), [])
    a.ble.config(mtu=100)
    a.ble.gattc_exchange_mtu(ha)
    _wait(a, 21)
    _wait(b, 21)
    eq((a.events(21), b.events(21)), ([(ha, 100)], [(hb, 100)]))
    with raises(OSError):
        a.ble.gattc_exchange_mtu(ha)


def test_exception_in_handler_disables_it():
    a, b = Dev("a"), Dev("b")
    calls = []

    def bad(ev, data):
        calls.append(ev)
        raise RuntimeError("boom")

    a.ble.irq(bad)
    b.ble.gap_advertise(20000, b"\x02\x01\x06")
    a.ble.gap_scan(0)
    blesim.advance(200)
    eq(calls, [5], "handler disabled after the first exception")


# -- security ------------------------------------------------------------------------


def _bonded(**cfg):
    c = {"bond": True}
    c.update(cfg)
    a, b = Dev("a", **c), Dev("b", **c)
    ha, hb = _pair_up(a, b)
    return a, b, ha, hb


def test_just_works_sc_bonding_secrets_and_order():
    a, b, ha, hb = _bonded()
    a.ble.gap_pair(ha)
    assert not a.events(28)
    _wait(a, 28)
    _wait(b, 28)
    eq(a.events(28), [(ha, 1, 0, 1, 16)])
    eq(b.events(28), [(hb, 1, 0, 1, 16)])
    for d, peer in ((a, b), (b, a)):
        evs = [e for e, _ in d.log]
        i = evs.index(28)
        eq(evs[i + 1 : i + 3], [30, 30], "ENCRYPTION_UPDATE, then OUR_SEC and PEER_SEC")
        t, addr = peer.mac()
        k = layout.key(t, addr)
        our, theirs = layout.unpack(d.store[(1, k)]), layout.unpack(d.store[(2, k)])
        eq(len(d.store[(1, k)]), 80)
        eq(our.ltk, theirs.ltk, "LE SC: one LTK")
        eq((our.ediv, our.rand, our.sc, our.authenticated), (0, 0, True, False))
        eq(theirs.irk, bytes(reversed(peer.store[(10, b"irk")])), "peer IRK as the peer's store holds it")
        eq(our.irk, bytes(reversed(d.store[(10, b"irk")])))
        assert theirs.csrk is not None


def test_esp_nimble_order_stores_keys_before_the_encryption_event():
    a = Dev("a", layout_size=88, bond=True)
    b = Dev("b", bond=True)
    ha, hb = _pair_up(a, b)
    a.ble.gap_pair(ha)
    _wait(a, 28)
    _wait(b, 28)
    ev_a = [e for e, _ in a.log if e in (28, 30)]
    ev_b = [e for e, _ in b.log if e in (28, 30)]
    eq(ev_a[-3:], [30, 30, 28], "esp-nimble: OUR_SEC, PEER_SEC, then ENCRYPTION_UPDATE")
    eq(ev_b[-3:], [28, 30, 30], "upstream NimBLE: ENCRYPTION_UPDATE first")


def test_legacy_pairing_distributes_ediv_rand_and_88_layout():
    a = Dev("a", layout_size=88, bond=True, le_secure=False)
    b = Dev("b", layout_size=88, bond=True, le_secure=False)
    ha, hb = _pair_up(a, b)
    a.ble.gap_pair(ha)
    _wait(a, 28)
    _wait(b, 28)
    k_b = layout.key(*b.mac())
    k_a = layout.key(*a.mac())
    eq(len(a.store[(2, k_b)]), 88)
    a_peer = layout.unpack(a.store[(2, k_b)])
    b_our = layout.unpack(b.store[(1, k_a)])
    eq((a_peer.ltk, a_peer.ediv, a_peer.rand), (b_our.ltk, b_our.ediv, b_our.rand), "legacy: the responder's LTK")
    eq(a_peer.sc, False)
    assert a_peer.ltk != layout.unpack(a.store[(1, k_b)]).ltk


def _passkey_pair(le_secure, right=True):
    """Passkey entry: the central (initiator) never gets _IRQ_PASSKEY_ACTION on
    MicroPython, so it injects blind once its procedure waits for input."""
    a = Dev("a", bond=True, mitm=True, io=4, le_secure=le_secure)  # keyboard+display
    b = Dev("b", bond=True, mitm=True, io=0, le_secure=le_secure)  # display only
    ha, hb = _pair_up(a, b)
    b.passkey = lambda d: b.ble.gap_passkey(d[0], d[1], 123456)
    a.ble.gap_pair(ha)
    _wait(b, 31)
    blesim.pump()
    a.ble.gap_passkey(ha, 2, 123456 if right else 654321)
    _wait(a, 28)
    _wait(b, 28)
    eq(a.events(31), [], "a MicroPython central never gets PASSKEY_ACTION")
    eq(b.events(31), [(hb, 3, 0)], "responder (peripheral) displays")
    return a, b, ha, hb


def test_passkey_entry_both_modes():
    for sc in (False, True):
        a, b, ha, hb = _passkey_pair(sc)
        eq(a.events(28), [(ha, 1, 1, 1, 16)], "authenticated")
        a, b, ha, hb = _passkey_pair(sc, right=False)
        eq(a.events(28), [(ha, 0, 0, 0, 0)], "wrong passkey fails")
        eq(b.events(28), [(hb, 0, 0, 0, 0)])
        assert (1, layout.key(*b.mac())) not in a.store


def test_central_never_gets_passkey_action_and_stalls_until_smp_timeout():
    for io_a, io_b, act_b in ((4, 0, 3), (1, 1, 4)):  # passkey entry, numeric comparison
        a = Dev("a", bond=True, mitm=True, io=io_a)
        b = Dev("b", bond=True, mitm=True, io=io_b)
        ha, hb = _pair_up(a, b)
        b.passkey = lambda d: b.ble.gap_passkey(d[0], d[1], 123456 if d[1] == 3 else 1)
        a.ble.gap_pair(ha)
        _wait(b, 31)
        blesim.advance(29000)
        eq([x[:2] for x in b.events(31)], [(hb, act_b)], "the peripheral is asked")
        eq(a.events(31), [], "the central's passkey event is dropped by the binding")
        eq((a.events(28), b.events(28)), ([], []), "still waiting for the central's input")
        blesim.advance(1100)
        eq(a.events(28), [(ha, 0, 0, 0, 0)], "SMP timeout (30 s)")
        eq(b.events(28), [(hb, 0, 0, 0, 0)])


def test_numeric_comparison_accept_and_reject():
    for accept in (True, False):
        a = Dev("a", bond=True, mitm=True, io=1)
        b = Dev("b", bond=True, mitm=True, io=1)
        ha, hb = _pair_up(a, b)
        errors = []
        b.passkey = lambda d: b.ble.gap_passkey(d[0], 4, 1)
        a.ble.gap_pair(ha)
        _wait(b, 31)
        blesim.pump()
        try:
            a.ble.gap_passkey(ha, 4, 1 if accept else 0)  # blind: no IRQ on a central
        except OSError as e:
            errors.append(e.args[0])
        _wait(b, 28)
        eq(a.events(31), [])
        assert 0 <= b.events(31)[0][2] < 1000000
        eq(b.events(28)[0][1], int(accept))
        if accept:
            _wait(a, 28)
            eq(a.events(28)[0][1], 1)
        else:
            blesim.advance(1000)
            eq(a.events(28), [], "the side that rejects gets no IRQ (ble_sm_inject_io: no enc_cb)")
        eq(errors, [] if accept else [-1036], "NimBLE's BLE_HS_SM_US_ERR passed through")


def test_ignore_security_requests():
    for n in (1, 2):
        a, b, ha, hb = _bonded()
        blesim.ignore_security_requests(a.ble, n)
        for i in range(n):
            na = len(a.log)
            b.ble.gap_pair(hb)  # Security Request
            blesim.advance(29000)
            eq(a.log[na:], [], "no store read, no response, no IRQ on the central")
            blesim.advance(1100)
            eq(b.events(28), [(hb, 0, 0, 0, 0)] * (i + 1), "the peripheral's request times out")
        b.ble.gap_pair(hb)
        _wait(a, 28)
        _wait(b, 28, n + 1)
        eq(a.events(28), [(ha, 1, 0, 1, 16)], "the next request is answered")
    with raises(ValueError, "n must be"):
        blesim.ignore_security_requests(a.ble, -1)


def _reconnect(a, b):
    a.ble.gap_disconnect(a.events(7)[-1][0])
    _wait(b, 2, len(b.events(2)) + 1)
    return _pair_up(a, b)


def test_reconnect_encrypts_with_stored_keys():
    a, b, ha, hb = _bonded()
    a.ble.gap_pair(ha)
    _wait(b, 28)
    ha, hb = _reconnect(a, b)
    na, nb = len(a.log), len(b.log)
    a.ble.gap_pair(ha)
    eq(a.log[na][0], 29, "the central reads PEER_SEC inside gap_pair")
    _wait(a, 28, 2)
    _wait(b, 28, 2)
    eq(a.events(28)[-1], (ha, 1, 0, 1, 16))
    eq(b.events(28)[-1], (hb, 1, 0, 1, 16))
    assert 30 not in [e for e, _ in a.log[na:]] + [e for e, _ in b.log[nb:]], "no pairing again"
    eq(b.log[nb][1][0], 1, "peripheral looked up OUR_SEC")


def test_peripheral_lost_bond_central_sees_failure():
    a, b, ha, hb = _bonded()
    a.ble.gap_pair(ha)
    _wait(b, 28)
    ha, hb = _reconnect(a, b)
    b.store.clear()
    a.ble.gap_pair(ha)
    _wait(a, 28, 2)
    blesim.pump()
    eq(a.events(28)[-1], (ha, 0, 0, 0, 0))
    eq(len(b.events(28)), 1, "no IRQ on the side that answered 'key missing'")


def test_central_lost_bond_repeat_pairing_deletes_old_bond():
    a, b, ha, hb = _bonded()
    a.ble.gap_pair(ha)
    _wait(b, 28)
    ha, hb = _reconnect(a, b)
    a.store.clear()
    nb = len(b.log)
    a.ble.gap_pair(ha)
    _wait(b, 28, 2)
    k = layout.key(*a.mac())
    sets = [d for e, d in b.log[nb:] if e == 30]
    eq(sets[:4], [(1, k, None), (1, k, None), (2, k, None), (2, k, None)], "delete until the store has none")
    eq(b.events(28)[-1], (hb, 1, 0, 1, 16))
    assert (1, k) in b.store


def test_mismatched_keys_mic_failure_drops_link():
    a, b, ha, hb = _bonded()
    a.ble.gap_pair(ha)
    _wait(b, 28)
    ha, hb = _reconnect(a, b)
    k = layout.key(*a.mac())
    s = layout.unpack(b.store[(1, k)])
    s.ltk = bytes(16)
    b.store[(1, k)] = layout.pack(s, 80)
    a.ble.gap_pair(ha)
    _wait(a, 8, 2)
    _wait(b, 2, 2)
    eq(a.events(28)[-1][1], 0)


def test_store_refusing_bond_write():
    a = Dev("a", bond=True)
    b = Dev("b", bond=True)
    ha, hb = _pair_up(a, b)
    b.refuse = True
    nb = len(b.log)
    a.ble.gap_pair(ha)
    _wait(b, 28)
    blesim.pump()
    eq(b.events(28)[-1], (hb, 1, 0, 1, 16), "the link is bonded as far as NimBLE reports")
    after = [d for e, d in b.log[nb:] if e in (29, 30)]
    eq([e for e, d in b.log[nb:] if e == 30 and d[2] is not None][:1], [30], "OUR_SEC write refused")
    assert (1, 0, bytes(7)) in after, "overflow: ble_store_util looks for the oldest peer with an all-zero key"
    eq(blesim.resolving_list(b.ble), [], "peer IRK not added when PEER_SEC was refused")


def test_privacy_rpa_rotation_and_identity_in_connect():
    a, b, ha, hb = _bonded()
    a.ble.gap_pair(ha)
    _wait(b, 28)
    b.ble.gap_disconnect(hb)
    _wait(a, 8)
    b.ble.config(addr_mode=2)
    blesim.rpa_timeout(b.ble, 10)
    b.ble.gap_advertise(20000, b"\x02\x01\x06")
    a.ble.gap_scan(0)
    blesim.pump()
    rpa = a.events(5)[-1][1]
    eq(rpa[0] >> 6, 1, "an RPA on the air")
    irk = bytes(reversed(b.store[(10, b"irk")]))
    from blesim import crypto

    eq(crypto.ah(irk, rpa[:3]), rpa[3:], "made with the real ah() and the device's IRK")
    blesim.advance(11000)
    rpa2 = a.events(5)[-1][1]
    assert rpa2 != rpa and crypto.ah(irk, rpa2[:3]) == rpa2[3:]
    a.ble.gap_scan(None)
    a.ble.gap_connect(1, rpa2)
    _wait(a, 7, 2)
    eq(a.events(7)[-1][1:], (0, b.ble.public), "identity address: IRK known from the store")
    c = Dev("c")
    b.ble.gap_advertise(20000)
    c.ble.gap_connect(1, blesim.ota_addr(b.ble)[1])
    _wait(c, 7)
    eq(c.events(7)[-1][1:], (1, blesim.ota_addr(b.ble)[1]), "over-the-air address when the IRK is unknown")


def test_reboot_keeps_only_the_python_store_and_forget():
    a, b, ha, hb = _bonded()
    a.ble.gap_pair(ha)
    _wait(b, 28)
    store = b.store
    blesim.reboot(b.ble)
    _wait(a, 8)
    assert not b.ble.active()
    n = len(b.log)
    b.ble.active(True)  # the store questions of a boot go to no handler: it was reset
    eq(b.log[n:], [], "IRQs after the reboot reach the old handler")
    blesim.reboot(b.ble)
    b = Dev("b", ble=b.ble, store=store, bond=True)
    eq(blesim.resolving_list(b.ble), [], "peer IRK restored, then cleared by load_irk's new own IRK")
    ha, hb = _pair_up(a, b)
    a.ble.gap_pair(ha)
    _wait(b, 28)
    eq(b.events(28)[-1], (hb, 1, 0, 1, 16))
    blesim.forget(b.ble, *a.mac())
    _wait(a, 8, 2)
    assert (1, layout.key(*a.mac())) not in b.store and (2, layout.key(*a.mac())) not in b.store
    eq(blesim.resolving_list(b.ble), [])
