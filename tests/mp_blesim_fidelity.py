# The simulator against facts of the real MicroPython NimBLE binding (issue 12, item 5):
# each test pins one behaviour the simulator used to get wrong.
import bluetooth
import blesim
import dictstore
import time
from blesim import layout
from bluetooth import UUID
from mptest import raises, eq
from mp_blesim import Dev, _pair_up, _wait, _bonded, _reconnect

_SVC = UUID(0x180F)
_CHR = UUID(0x2A19)


def test_store_that_always_confirms_a_delete_fails_loudly():
    a, b, ha, hb = _bonded()
    a.ble.gap_pair(ha)
    _wait(b, 28)

    def irq(ev, data):
        if ev == 30 and data[2] is None:
            return True  # "deleted", forever
        return b.irq(ev, data)

    b.ble.irq(irq)
    with raises(RuntimeError, "would hang"):
        blesim.forget(b.ble, *a.mac())


def test_get_secret_answer_must_be_a_buffer():
    ble = blesim.device("t")
    ble.irq(lambda ev, data: 5 if ev == 29 else None)
    with raises(TypeError, "buffer"):
        ble.active(True)  # raised outside the handler, not a zeroed record
    ble2 = blesim.device("s")
    irk = "0123456789abcdef"
    ble2.irq(lambda ev, data: irk if ev == 29 and data[0] == 10 else None)
    ble2.active(True)
    eq(ble2.own_irk(), bytes(reversed(irk.encode())), "a str answer is taken as its bytes")


def test_get_secret_index_is_8_bit():
    store = {}
    for i in range(256):
        s = layout.Sec(0, bytes((1, 2, 3, 4, i >> 8, i & 0xFF)))
        store[(2, layout.key(0, s.addr))] = layout.pack(s, 80)
    ble = blesim.device("i")
    seen = []

    def irq(ev, data):
        if ev == 29 and data[0] == 2:
            seen.append(data[1])
        return dictstore.answer(store, ev, data)

    ble.irq(irq)
    with raises(RuntimeError, "8-bit index wraps"):
        ble.active(True)
    eq((len(seen), max(seen)), (256, 255))


def test_authenticated_and_bonded_never_downgraded_on_a_link():
    a = Dev("a", bond=True, mitm=True, io=4)
    b = Dev("b", bond=True, mitm=True, io=0)
    ha, hb = _pair_up(a, b)
    b.passkey = lambda d: b.ble.gap_passkey(d[0], d[1], 123456)
    a.ble.gap_pair(ha)
    _wait(b, 31)
    blesim.pump()
    a.ble.gap_passkey(ha, 2, 123456)
    _wait(a, 28)
    eq(a.events(28), [(ha, 1, 1, 1, 16)])
    # pair again on the same link, Just Works and no bonding this time
    a.store.clear()
    a.ble.config(mitm=False, bond=False)
    b.ble.config(mitm=False, bond=False)
    a.ble.gap_pair(ha)
    _wait(a, 28, 2)
    _wait(b, 28, 2)
    eq(a.events(28)[-1], (ha, 1, 1, 1, 16), "ble_sm_update_sec_state never revokes")
    eq(b.events(28)[-1], (hb, 1, 1, 1, 16))


def test_stored_record_without_ltk_encrypts_with_zero_ltk_and_drops():
    a, b, ha, hb = _bonded()
    a.ble.gap_pair(ha)
    _wait(b, 28)
    ha, hb = _reconnect(a, b)
    k = layout.key(*b.mac())
    s = layout.unpack(a.store[(2, k)])
    s.ltk = None
    a.store[(2, k)] = layout.pack(s, 80)
    na, nb = len(a.log), len(b.log)
    b.ble.gap_pair(hb)  # Security Request: the central uses the record as it is
    _wait(a, 8, 2)
    _wait(b, 2, 2)
    eq([e for e, _ in a.log[na:] if e == 30], [], "no pairing afresh")
    eq([e for e, _ in b.log[nb:] if e == 30], [])
    eq(a.events(28)[-1][1], 0, "encryption failed (MIC), then the link dropped")


def test_resolving_list_size():
    a = Dev("a", bond=True)
    blesim.resolving_list_size(a.ble, 1)
    for name in ("b", "c"):
        p = Dev(name, bond=True)
        ha, hp = _pair_up(a, p)
        a.ble.gap_pair(ha)
        _wait(p, 28)
        assert (2, layout.key(*p.mac())) in a.store, "the bond is stored anyway"
    eq(len(blesim.resolving_list(a.ble)), 1, "the second IRK did not fit")
    with raises(ValueError, "n must be"):
        blesim.resolving_list_size(a.ble, -1)


def _gatt(flags=bluetooth.FLAG_READ | bluetooth.FLAG_WRITE):
    a, b = Dev("a"), Dev("b")
    ((h,),) = b.ble.gatts_register_services(((_SVC, ((_CHR, flags),)),))
    ha, hb = _pair_up(a, b)
    return a, b, h, ha, hb


def test_write_longer_than_mtu_minus_3_is_truncated():
    a, b, h, ha, hb = _gatt()
    b.ble.gatts_set_buffer(h, 100)
    a.ble.gattc_write(ha, h, b"x" * 40, 1)
    _wait(a, 17)
    eq(b.ble.gatts_read(h), b"x" * 20, "MTU 23: 20 bytes go out")
    a.ble.gattc_write(ha, h, b"y" * 40)
    _wait(b, 3, 2)
    eq(b.ble.gatts_read(h), b"y" * 20)


def test_ble_is_a_type_and_a_singleton():
    ble = bluetooth.BLE()
    assert isinstance(bluetooth.BLE, type)
    assert ble is bluetooth.BLE() and isinstance(ble, bluetooth.BLE)
    assert hasattr(bluetooth.BLE, "gap_advertise") and hasattr(bluetooth.BLE, "gatts_notify")
    assert not hasattr(bluetooth.BLE, "no_such_method")
    assert isinstance(blesim.device("x"), bluetooth.BLE)

    class MyBLE(bluetooth.BLE):
        def __init__(self):
            super().__init__()
            self.extra = 1

    m = MyBLE()
    assert isinstance(m, MyBLE) and isinstance(m, bluetooth.BLE) and m.extra == 1
    m.active(True)
    assert ble.active(), "a subclass instance drives the process's one device"
    m.config(gap_name="sub")
    eq(ble.config("gap_name"), b"sub")
    ble.active(False)


def test_str_payloads_are_buffers():
    a, b, h, ha, hb = _gatt(bluetooth.FLAG_READ | bluetooth.FLAG_WRITE | bluetooth.FLAG_NOTIFY | bluetooth.FLAG_INDICATE)
    eq(b.ble.gatts_write(h, "abc"), 3)
    eq(b.ble.gatts_read(h), b"abc")
    a.ble.gattc_write(ha, h, "xy", 1)
    _wait(a, 17)
    eq(b.ble.gatts_read(h), b"xy")
    b.ble.gatts_notify(hb, h, "n1")
    b.ble.gatts_indicate(hb, h, "i1")
    _wait(a, 19)
    eq((a.events(18), a.events(19)), ([(ha, h, b"n1")], [(ha, h, b"i1")]))
    b.ble.gap_advertise(20000, "\x02\x01\x06", resp_data="\x02\x09x")
    with raises(TypeError, "buffer"):
        b.ble.gatts_write(h, 5)
    with raises(TypeError, "buffer"):
        b.ble.gap_advertise(20000, 7)


def test_uuid_str_of_2_4_16_chars_is_raw_and_uuids_order():
    eq(bytes(UUID("AB")), b"AB")
    eq(bytes(UUID("AB12")), b"AB12")
    eq(UUID("AB12"), UUID(b"AB12"))
    eq(bytes(UUID("0123456789abcdef")), b"0123456789abcdef")
    eq(bytes(UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E"))[-1], 0x6E)
    with raises(ValueError, "invalid char"):
        UUID("xyz")
    assert UUID(0x1800) < UUID(0x1801) and UUID(0x1801) > UUID(0x1800)
    assert UUID(0x1801) <= UUID(0x1801) and UUID(0x1801) >= UUID(0x1801)
    assert UUID(0xFFFF) < UUID(b"\x00\x00\x00\x00"), "a shorter type sorts first"
    eq(sorted([UUID(0x2A01), UUID(0x2A00)]), [UUID(0x2A00), UUID(0x2A01)])
    assert UUID(0x1800) != 0x1800


def test_gatt_handles_like_the_real_unix_build():
    a, b = Dev("a"), Dev("b")
    ((h,),) = b.ble.gatts_register_services(((_SVC, ((_CHR, bluetooth.FLAG_READ),)),))
    ha, hb = _pair_up(a, b)
    a.ble.gattc_discover_services(ha)
    _wait(a, 10)
    # the last service's group ends at 0xFFFF (ble_att_svr.c; tests/traces/gatt_cache_*.trace)
    eq([d[1:] for d in a.events(9)], [(10, 14, UUID(0x1800)), (15, 18, UUID(0x1801)), (19, 0xFFFF, _SVC)])
    a.ble.gattc_discover_characteristics(ha, 15, 18)
    _wait(a, 12)
    eq(a.events(11), [(ha, 18, 17, 0x20, UUID(0x2A05))], "Service Changed value at 17")
    eq(h, 21)
    a.ble.gattc_read(ha, 12)
    _wait(a, 16)
    eq(a.events(15), [(ha, 12, b"MPY NIMBLE")], "device name value at 12")
    b.ble.gap_disconnect(hb)
    _wait(a, 8)
    ((h2,),) = b.ble.gatts_register_services(((_SVC, ((_CHR, bluetooth.FLAG_READ),)),))
    eq(h2, 33, "ble_att_svr_id goes on counting (GAP 22-26, GATT 27-30, app 31-33)")


def test_cccd_notify_bit_on_indicate_only_characteristic_fails():
    a, b, h, ha, hb = _gatt(bluetooth.FLAG_READ | bluetooth.FLAG_INDICATE)
    cccd = h + 1
    for value, status in ((b"\x01\x00", 0x106), (b"\x03\x00", 0x106), (b"\x02", 0x10D), (b"\x02\x00", 0)):
        n = len(a.events(17))
        a.ble.gattc_write(ha, cccd, value, 1)
        _wait(a, 17, n + 1)
        eq(a.events(17)[-1], (ha, cccd, status), "CCCD write %r" % value)
    b.ble.gatts_write(h, b"v", True)
    _wait(a, 19)
    eq(a.events(19), [(ha, h, b"v")], "the indicate subscription took")


def test_irqs_arrive_while_the_app_sleeps():
    import machine

    for sleep in (lambda: time.sleep_ms(30), lambda: time.sleep(0.03), lambda: time.sleep_us(30000), machine.idle):
        a, b = Dev("a"), Dev("b")
        b.ble.gap_advertise(20000, b"\x02\x01\x06")
        a.ble.gap_connect(*b.mac())
        for _ in range(100):
            sleep()  # never blesim.pump(): the "host thread" delivers
            if a.events(7) and b.events(1):
                break
        eq((len(a.events(7)), len(b.events(1))), (1, 1))
        a.ble.gap_disconnect(a.events(7)[0][0])
        time.sleep_ms(5)
        eq((len(a.events(8)), len(b.events(2))), (1, 1))


def test_a_handler_that_sleeps_blocks_the_host():
    a, b = Dev("a"), Dev("b")
    inside = []

    def irq(ev, data):
        a.irq(ev, data)
        if ev == 7:
            n = len(a.log)
            time.sleep_ms(20)  # the host is the caller: nothing else runs meanwhile
            inside.append(len(a.log) - n)

    a.ble.irq(irq)
    b.ble.gap_advertise(20000, b"\x02\x01\x06")
    a.ble.gap_connect(*b.mac())
    blesim.run_until(lambda: inside)
    eq(inside, [0])
