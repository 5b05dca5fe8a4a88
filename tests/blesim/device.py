"""One simulated board: the `bluetooth.BLE` object, its NimBLE-like host and controller.

Behaviour follows MicroPython's NimBLE binding (extmod/modbluetooth.c,
extmod/nimble/modbluetooth_nimble.c at micropython HEAD 1c3c2011) with NimBLE 1.4
(micropython/mynewt-nimble 42849560); see README.md here for the fidelity notes.
IRQs raised by the stack run from Air.pump(), never inside the call that caused them;
the ones MicroPython raises inside a call are marked "synchronous" below.
"""
from micropython import const
import os
import sys
from .air import air
from . import cccd, crypto, gatt, layout, smp
from .api import BLE
from .uuid import UUID

# errno values as MicroPython's mperrno.h defines them
_ENOENT = const(2)
_E2BIG = const(7)
_EBUSY = const(16)
_ENODEV = const(19)  # ERRNO_BLUETOOTH_NOT_ACTIVE
_EINVAL = const(22)
_ENOTCONN = const(107)
_EALREADY = const(114)
_BLE_HS_ENOTCONN = const(7)

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_GATTS_READ_REQUEST = const(4)
_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_SERVICE_RESULT = const(9)
_IRQ_GATTC_SERVICE_DONE = const(10)
_IRQ_GATTC_CHARACTERISTIC_RESULT = const(11)
_IRQ_GATTC_CHARACTERISTIC_DONE = const(12)
_IRQ_GATTC_DESCRIPTOR_RESULT = const(13)
_IRQ_GATTC_DESCRIPTOR_DONE = const(14)
_IRQ_GATTC_READ_RESULT = const(15)
_IRQ_GATTC_READ_DONE = const(16)
_IRQ_GATTC_WRITE_DONE = const(17)
_IRQ_GATTC_NOTIFY = const(18)
_IRQ_GATTC_INDICATE = const(19)
_IRQ_GATTS_INDICATE_DONE = const(20)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)

_SECRET_OUR_IRK = const(10)
_MODE_PUBLIC = const(0)
_MODE_RANDOM = const(1)
_MODE_RPA = const(2)
_MODE_NRPA = const(3)
_ATT_MTU_DEFAULT = const(23)
_PREFERRED_MTU = const(256)  # MYNEWT_VAL_BLE_ATT_PREFERRED_MTU in MicroPython's syscfg.h
_NAME_MAX = const(31)  # BLE_SVC_GAP_DEVICE_NAME_MAX_LENGTH
_CONN_NONE = const(0xFFFF)
_SCAN_TICK_MS = const(10)
_REASON_LOCAL = const(0x16)
_REASON_REMOTE = const(0x13)
_REASON_TIMEOUT = const(0x08)
_MAX_CONNECTIONS = const(4)  # MYNEWT_VAL_BLE_MAX_CONNECTIONS

# ble_hs_pvcy_default_irk: used when the app's store does not keep the own IRK
_DEFAULT_IRK = bytes((0xEF, 0x8D, 0xE2, 0x16, 0x4F, 0xEC, 0x43, 0x0D, 0xBF, 0x5B, 0xDD, 0x34, 0xC0, 0x53, 0x1E, 0xB8))


_LOOP_LIMIT = const(256)  # more store answers than the 8-bit index / any real store allows


def buf(v):
    """bytes of a buffer argument, as mp_get_buffer_raise accepts it (str too)."""
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (bytes, bytearray, memoryview, UUID)):
        return bytes(v)
    try:
        import array

        if isinstance(v, array.array):
            return bytes(v)
    except ImportError:
        pass
    raise TypeError("object with buffer protocol required")


def _random_addr(top):
    """A random address with the given top two bits (0b11 static, 0b00 NRPA, 0b01 RPA prand);
    the random part is never all 0s or all 1s (Vol 6 Part B 1.3.2)."""
    while True:
        a = bytearray(os.urandom(6))
        a[0] = (a[0] & 0x3F) | (top << 6)
        rest = bytes(a[1:])
        if not ((a[0] & 0x3F) == 0 and rest == bytes(5)) and not ((a[0] & 0x3F) == 0x3F and rest == b"\xff" * 5):
            return bytes(a)


def make_rpa(irk_msb):
    while True:
        prand = bytearray(os.urandom(3))
        prand[0] = (prand[0] & 0x3F) | 0x40
        if bytes(prand) not in (b"\x40\x00\x00", b"\x7f\xff\xff"):
            return bytes(prand) + crypto.ah(irk_msb, prand)


class Conn:
    def __init__(self, handle, peer, peer_handle, master, our_ota, our_id, peer_ota, peer_id):
        self.handle = handle
        self.peer = peer  # the peer device's id on the air
        self.peer_handle = peer_handle
        self.master = master  # we initiated the connection (central role)
        self.our_ota = our_ota
        self.our_id = our_id
        self.peer_ota = peer_ota
        self.peer_id = peer_id  # identity address if resolved, else over-the-air
        self.mtu = _ATT_MTU_DEFAULT
        self.mtu_done = False
        self.encrypted = self.authenticated = self.bonded = False
        self.key_size = 0
        self.smp = None
        self.cccd = {}  # value handle -> CCCD bits the peer wrote
        self.ops = {}  # client op id -> (kind, value handle)


class Device(BLE):
    """A simulated device, an instance of `bluetooth.BLE`. `bluetooth.BLE()` returns the
    process's own one; more come from blesim.device() (Device.make)."""

    def __init__(self, *args, **kw):
        pass  # BLE() returns an existing device; Device.make builds one

    @classmethod
    def make(cls, name="dev", public=True, layout_size=80):
        d = object.__new__(cls)
        d._setup(name, public, layout_size)
        return d

    def _setup(self, name, public, layout_size):
        if layout_size not in layout.SIZES:
            raise ValueError("layout_size must be 80 or 88, got %r" % (layout_size,))
        self.name = name
        self.id = air.new_id()
        self.layout = layout_size
        # esp-nimble stores a new bond's keys before the encryption event; upstream after
        self.keys_first = layout_size == 88
        self.rssi = -50
        self.rpa_timeout_ms = 300000  # MYNEWT_VAL_BLE_RPA_TIMEOUT = 300 s
        self.secreq_ignore = 0  # Security Requests the host will drop (test control)
        self.rl_size = None  # controller resolving-list slots (None: unbounded)
        self.cccd_fw = False  # firmware built with native/aioble_pm_cccd (blesim.cccd_module)
        self.cccd_hooked = False  # its install() ran since the stack started
        self._sc_range = (0, 0)  # ble_svc_gatt_changed's last range (RAM only)
        self.att_pdus = 0  # ATT PDUs sent and received on this device's links (test control)
        if public is True:
            public = bytes(os.urandom(6))
        self.public = bytes(public) if public else None
        self._gen = 0
        self._boot()
        air.devices[self.id] = self

    def __repr__(self):
        return "<BLE %s>" % self.name

    # -- lifetime -------------------------------------------------------------------
    def _boot(self):
        """State right after a reset: nothing but the hardware address survives."""
        self._handler = None
        self._active = False
        self.cccd_hooked = self._store_cbs = False
        self._sc_range = (0, 0)
        self._pvcy_irk = _DEFAULT_IRK  # NimBLE keeps the last own IRK until reset
        self._gap_name = b"MPY NIMBLE"
        self.bond = False
        self.mitm = False
        self.le_secure = True  # MYNEWT_VAL_BLE_SM_SC = 1, BONDING/MITM 0, IO NoIO
        self.io = 3
        self._clear()

    def _clear(self):
        self._gen += 1
        self._mode = _MODE_PUBLIC
        self._static = None
        self._nrpa = None
        self._rpa = None
        self._rpa_until = 0
        self._rl = []  # resolving list: [id type, id addr, irk MSB-first]
        self._adv = None
        self._adv_data = b""
        self._resp_data = b""
        self._scan = None
        self._connecting = None
        self._conns = {}
        self._mtu = _PREFERRED_MTU
        self._chr_disc = False
        self._next_op = 1
        self._server = gatt.Server()

    def _later(self, delay_ms, fn, *args):
        air.post(delay_ms, self._run_if, self._gen, fn, args)

    def _run_if(self, gen, fn, args):
        if gen == self._gen:
            fn(self, *args)

    def _shutdown(self, reason, irqs):
        if irqs and self._scan is not None:
            self._scan = None
            self._irq(_IRQ_SCAN_DONE, ())  # synchronous, from mp_bluetooth_gap_scan_stop
        for c in list(self._conns.values()):
            air.send(self.id, c.peer, "L", c.peer_handle, "disc", reason)
        had_adv = self._adv is not None
        self._active = False
        self._clear()
        if had_adv:
            air.adv_changed(self)

    def _reboot(self):
        self._shutdown(_REASON_TIMEOUT, False)
        self._boot()

    # -- IRQ delivery -----------------------------------------------------------------
    def _irq(self, event, data, scratch=()):
        """Call the handler like invoke_irq_handler: an exception is printed and the
        handler disabled. Buffers in `scratch` (behind memoryviews in `data`) are
        overwritten afterwards, since on a board they are valid only during the call."""
        h = self._handler
        if h is None:
            return None
        try:
            return h(event, data)
        except Exception as e:
            print("Unhandled exception in IRQ callback handler")
            sys.print_exception(e)
            self._handler = None
            return None
        finally:
            for b in scratch:
                for i in range(len(b)):
                    b[i] = 0xA5

    def _gap_irq(self, event, data, scratch=()):
        if self._active:  # the NimBLE GAP callbacks return early when not active
            return self._irq(event, data, scratch)
        return None

    def _irq_addr(self, event, handle, addr):
        buf = bytearray(addr[1])
        self._gap_irq(event, (handle, addr[0], memoryview(buf)), (buf,))

    def _irq_data(self, event, head, data):
        buf = bytearray(data)
        self._gap_irq(event, head + (memoryview(buf),), (buf,))

    # -- the Python secret store (FACTS 3.3) ------------------------------------------
    def _get_secret(self, kind, index, key):
        """mp_bluetooth_gap_on_get_secret: the index is a uint8_t; an answer that is not
        None must be a buffer (str too), else mp_get_buffer_raise raises TypeError outside
        the handler's protection (on ESP32 that kills the NimBLE task): it leaves here."""
        kb = None if key is None else bytearray(key)
        r = self._irq(_IRQ_GET_SECRET, (kind, index & 0xFF, None if kb is None else memoryview(kb)), (kb,) if kb else ())
        return None if r is None else buf(r)

    def _set_secret(self, kind, key, value):
        kb = bytearray(key)
        vb = None if value is None else bytearray(value)
        r = self._irq(_IRQ_SET_SECRET, (kind, memoryview(kb), None if vb is None else memoryview(vb)),
                      (kb, vb) if vb else (kb,))
        return bool(r)

    def _read_blob(self, kind, index, key):
        """ble_secret_store_read: anything but exactly sizeof(ble_store_value_sec) is ENOENT."""
        v = self._get_secret(kind, index, key)
        return v if v is not None and len(v) == self.layout else None

    def _read_sec(self, kind, addr):
        v = self._read_blob(kind, 0, layout.key(addr[0], addr[1]))
        return None if v is None else layout.unpack(v)

    def _write_sec(self, kind, sec):
        """ble_store_write: a refused write (BLE_HS_ESTORE_CAP) makes NimBLE's
        ble_store_util_status_rr unpair the oldest peer it can find, then retry."""
        blob = layout.pack(sec, self.layout)
        k = layout.key(sec.addr_type, sec.addr)
        while not self._set_secret(kind, k, blob):
            victim = self._oldest_peer()
            if victim is None:
                return False
            self._unpair(victim)
        return True

    def _oldest_peer(self):
        # ble_store_util_bonded_peers iterates OUR_SEC with BLE_ADDR_ANY; MicroPython's
        # read callback then passes the all-zero 7-byte key (not None) with the index.
        found = []
        i = 0
        while True:
            _check_index(i, "OUR_SEC")
            v = self._read_blob(smp.OUR_SEC, i, bytes(7))
            if v is None:
                break
            a = layout.key_addr(v[0:7])
            if a not in found:
                found.append(a)
                if len(found) > 1:
                    return None  # BLE_HS_ENOMEM with room for one
            i += 1
        return found[0] if found else None

    def _delete_peer(self, addr):
        """ble_store_util_delete_peer: delete OUR_SEC, then PEER_SEC, each until the
        store says it has none; then the CCCDs (cccd.py)."""
        k = layout.key(addr[0], addr[1])
        for kind in (smp.OUR_SEC, smp.PEER_SEC):
            n = 0
            while self._set_secret(kind, k, None):
                n += 1
                if n >= _LOOP_LIMIT:
                    raise RuntimeError("blesim: the store answered True to %d deletes of type %d key %s: "
                                       "NimBLE repeats a delete while the store says True, the real "
                                       "stack would hang here" % (n, kind, k.hex()))
        cccd.delete_peer(self, addr)

    def _unpair(self, addr):
        """ble_gap_unpair: drop the link to that peer, its resolving-list entry, its keys."""
        for c in list(self._conns.values()):
            if c.peer_id == addr:
                air.send(self.id, c.peer, "L", c.peer_handle, "disc", _REASON_REMOTE)
                self._later(0, Device._drop_handle, c.handle, _REASON_LOCAL)
        self._rl = [e for e in self._rl if (e[0], e[1]) != addr]
        self._delete_peer(addr)

    def _restore_irks(self):
        """ble_hs_misc_restore_irks: iterate PEER_SEC by index until a miss."""
        i = 0
        while True:
            _check_index(i, "PEER_SEC")
            v = self._read_blob(smp.PEER_SEC, i, None)
            if v is None:
                return
            s = layout.unpack(v)
            if s.irk is not None:
                self.rl_add(s.addr_type, s.addr, s.irk)
            i += 1

    def rl_add(self, t, a, irk):
        """LE Add Device To Resolving List; False when the controller has no free slot
        (Memory Capacity Exceeded: NimBLE logs it, the peer stays unresolved)."""
        rest = [e for e in self._rl if (e[0], e[1]) != (t, a)]
        if self.rl_size is not None and len(rest) >= self.rl_size:
            return False
        self._rl = rest + [(t, a, irk)]
        return True

    def own_irk(self):
        return bytes(reversed(self._pvcy_irk))

    # -- addresses ----------------------------------------------------------------------
    def _id_addr(self):
        """Our identity address as NimBLE sends it in pairing (our_id_addr)."""
        if self._mode == _MODE_PUBLIC or (self._mode == _MODE_RPA and self._static is None):
            return (0, self.public)
        if self._mode == _MODE_NRPA:
            return (1, self._nrpa)
        return (1, self._static)

    def _ota(self):
        """The address we use on the air now (the RPA rotates every rpa_timeout)."""
        if self._mode != _MODE_RPA:
            return self._id_addr()
        now = air.now()
        if self._rpa is None or now >= self._rpa_until:
            self._rpa = make_rpa(self.own_irk())
            self._rpa_until = now + self.rpa_timeout_ms
        return (1, self._rpa)

    def _resolve(self, addr):
        t, a = addr
        if t == 1 and a[0] >> 6 == 1:
            for it, ia, irk in self._rl:
                if crypto.ah(irk, a[:3]) == a[3:]:
                    return (it, ia)
        return addr

    def _new_static(self):
        self._static = _random_addr(3)

    # -- general ------------------------------------------------------------------------
    def active(self, *args):
        if len(args) > 1:
            raise TypeError("function takes at most 2 positional arguments")
        if args:
            if args[0]:
                if not self._active:
                    self._activate()
            elif self._active:
                self._shutdown(_REASON_REMOTE, True)
        return self._active

    def _activate(self):
        """mp_bluetooth_init: ble_hs_sync restores peer IRKs, then sync_cb's load_irk
        asks for the own IRK (synchronous IRQs, before active() returns)."""
        self._clear()
        self.cccd_hooked = False  # mp_bluetooth_init sets the binding's store callbacks again
        self._store_cbs = True
        self._set_our_irk(_DEFAULT_IRK)  # ble_hs_startup_go: ble_hs_pvcy_set_our_irk(NULL)
        self._restore_irks()  # ble_hs_sync: ble_hs_misc_restore_irks
        irk = self._get_secret(_SECRET_OUR_IRK, 0, b"irk")  # sync_cb: load_irk
        if irk is not None and len(irk) == 16:
            self._set_our_irk(irk)
        else:
            new = os.urandom(16)
            if self._set_secret(_SECRET_OUR_IRK, b"irk", new):
                self._set_our_irk(new)
        if self.public is not None:
            self._mode = _MODE_PUBLIC
        else:
            self._mode = _MODE_RANDOM
            self._new_static()
        self._active = True
        air.kick()

    def _set_our_irk(self, irk):
        """ble_hs_pvcy_set_our_irk: a new own IRK clears the controller's resolving list
        and does NOT restore the peer IRKs (this NimBLE pin): after load_irk applies a
        stored IRK, the peers restored just before are gone from the list."""
        if irk != self._pvcy_irk:
            self._pvcy_irk = bytes(irk)
            self._rl = []

    def config(self, *args, **kw):
        if not kw:
            if len(args) != 1:
                raise TypeError("must query one param")
            p = args[0]
            if p == "gap_name":
                return bytes(self._gap_name)
            if p == "mac":
                self._need_active()
                if self._mode == _MODE_RPA:
                    raise OSError(_EINVAL)  # NimBLE cannot report the current RPA
                return self._id_addr()
            if p == "mtu":
                self._need_active()
                return self._mtu
            raise ValueError("unknown config param")
        if args:
            raise TypeError("can't specify pos and kw args")
        for k, v in kw.items():
            if k == "gap_name":
                v = bytes(v, "utf-8") if isinstance(v, str) else bytes(v)
                if len(v) > _NAME_MAX:
                    raise OSError(_EINVAL)
                self._gap_name = v
            elif k == "mtu":
                self._need_active()
                if v < _ATT_MTU_DEFAULT or v > 527:
                    raise OSError(_EINVAL)
                self._mtu = v
            elif k == "addr_mode":
                self._need_active()
                self._set_addr_mode(v)
            elif k == "bond":
                self.bond = bool(v)
            elif k == "mitm":
                self.mitm = bool(v)
            elif k == "le_secure":
                self.le_secure = bool(v)
            elif k == "io":
                self.io = int(v)
            else:
                raise ValueError("unknown config param")

    def _set_addr_mode(self, mode):
        if mode == _MODE_PUBLIC:
            if self.public is None:
                raise OSError(_EINVAL)
            self._mode = mode
        elif mode == _MODE_RANDOM:
            self._new_static()  # a fresh static address every time (set_random_address)
            self._mode = mode
        elif mode == _MODE_RPA:
            if self.public is None:
                self._new_static()
            else:
                self._static = None
            self._rpa = None
            self._mode = mode
        elif mode == _MODE_NRPA:
            self._nrpa = _random_addr(0)
            self._mode = mode
        if self._adv is not None:
            air.adv_changed(self)

    def _need_active(self):
        if not self._active:
            raise OSError(_ENODEV)

    def irq(self, handler):
        if handler is not None and not callable(handler):
            raise ValueError("invalid handler")
        self._handler = handler

    # -- advertising and scanning ---------------------------------------------------------
    def gap_advertise(self, interval_us=500000, adv_data=None, *, resp_data=None, connectable=True):
        if interval_us is None:
            self._adv_stop()
            return
        self._need_active()
        self._adv_stop()
        # MicroPython only sets the payloads it is given: None keeps the previous one
        if adv_data is not None:
            adv_data = buf(adv_data)
            if len(adv_data) > 31:
                raise OSError(_EINVAL)
            self._adv_data = adv_data
        if resp_data is not None:
            resp_data = buf(resp_data)
            if len(resp_data) > 31:
                raise OSError(_EINVAL)
            self._resp_data = resp_data
        self._adv = (max(20, interval_us // 1000), bool(connectable))
        air.adv_changed(self)
        if self._mode == _MODE_RPA:
            self._later(self.rpa_timeout_ms, Device._rotate_check)

    def _adv_stop(self):
        if self._adv is not None:
            self._adv = None
            air.adv_changed(self)

    def _rotate_check(self):
        if self._adv is not None and self._mode == _MODE_RPA:
            air.adv_changed(self)  # picks up a new RPA if it expired
            self._later(max(1, self._rpa_until - air.now()), Device._rotate_check)

    def adv_state(self):
        """(adv type, addr type, addr, adv data, resp data, interval ms, connectable);
        a non-connectable advertiser sends ADV_SCAN_IND (ble_gap_adv_type, disc mode GEN)."""
        if self._adv is None:
            return None
        t, a = self._ota()
        return (0 if self._adv[1] else 2, t, a, self._adv_data, self._resp_data, self._adv[0], self._adv[1])

    def gap_scan(self, *args):
        if args and args[0] is None:
            self._need_active()
            if self._scan is not None:
                self._scan = None
                self._irq(_IRQ_SCAN_DONE, ())  # synchronous (mp_bluetooth_gap_scan_stop)
            return
        self._need_active()
        duration = args[0] if args else 0
        active = bool(args[3]) if len(args) > 3 else False
        if self._scan is not None:
            raise OSError(_EALREADY)
        now = air.now()
        self._scan = {"end": now + duration if duration else None, "active": active, "due": {}}
        self._later(0, Device._scan_tick, self._scan)

    def _scan_tick(self, scan):
        if self._scan is not scan:
            return
        now = air.now()
        for dev_id, st in air.advertisers(self.id):
            due = scan["due"].get(dev_id, 0)
            if now < due:
                continue
            scan["due"][dev_id] = now + st[5]
            self._report(st)
            if self._scan is not scan:
                return  # the handler stopped the scan
        if scan["end"] is not None and now >= scan["end"]:
            self._scan = None
            self._gap_irq(_IRQ_SCAN_DONE, ())
            return
        self._later(_SCAN_TICK_MS, Device._scan_tick, scan)

    def _report(self, st):
        adv_type, t, a, data, resp = st[0], st[1], st[2], st[3], st[4]
        ab = bytearray(a)
        db = bytearray(data)
        self._gap_irq(_IRQ_SCAN_RESULT, (t, memoryview(ab), adv_type, self.rssi, memoryview(db)), (ab, db))
        if self._scan is not None and self._scan["active"] and resp:
            ab = bytearray(a)
            rb = bytearray(resp)
            self._gap_irq(_IRQ_SCAN_RESULT, (t, memoryview(ab), 4, self.rssi, memoryview(rb)), (ab, rb))

    # -- connections ----------------------------------------------------------------------
    def gap_connect(self, addr_type, addr=None, scan_duration_ms=2000, min_conn_interval_us=None, max_conn_interval_us=None):
        if addr is None:
            if addr_type is not None:
                raise TypeError("invalid addr")
            self._need_active()
            if self._connecting is None:
                raise OSError(_EALREADY)
            self._connecting = None
            self._later(0, Device._connect_failed)
            return
        if len(addr) != 6:
            raise ValueError("invalid addr")
        self._need_active()
        if self._connecting is not None:
            raise OSError(_EALREADY)
        if self._scan is not None:
            self.gap_scan(None)
        if scan_duration_ms is None:
            scan_duration_ms = 2000
        self._connecting = [addr_type, bytes(addr), air.now() + scan_duration_ms, 0, 0]
        self._connecting[4] = self._new_handle()
        self._later(0, Device._connect_try, self._connecting)

    def _connect_try(self, attempt):
        if self._connecting is not attempt:
            return
        now = air.now()
        if now >= attempt[2]:
            self._connecting = None
            self._connect_failed()
            return
        if now >= attempt[3]:
            for dev_id, st in air.advertisers(self.id):
                if st[6] and st[1] == attempt[0] and st[2] == attempt[1]:
                    attempt[3] = now + 50
                    air.send(self.id, dev_id, "conn_ind", self._ota(), (attempt[0], attempt[1]), attempt[4])
                    break
        self._later(_SCAN_TICK_MS, Device._connect_try, attempt)

    def _connect_failed(self):
        self._gap_irq(_IRQ_PERIPHERAL_DISCONNECT, (_CONN_NONE, 0xFF, memoryview(bytearray(6))))

    def _new_handle(self):
        h = 1  # UNVERIFIED: controllers differ in the first handle they hand out
        busy = self._connecting[4] if self._connecting else 0
        while h in self._conns or h == busy:
            h += 1
        return h

    def _on_msg(self, src, op, args):
        if not self._active:
            return
        if op == "L":
            c = self._conns.get(args[0])
            if c is not None and c.peer == src:
                self._on_link(c, args[1], args[2:])
        elif op == "conn_ind":
            self._conn_ind(src, tuple(args[0]), tuple(args[1]), args[2])
        elif op == "conn_rsp":
            self._conn_rsp(src, args)

    def _conn_ind(self, src, central_ota, target, central_handle):
        st = self.adv_state()
        if st is None or not st[6] or (st[1], st[2]) != target or len(self._conns) >= _MAX_CONNECTIONS:
            air.send(self.id, src, "conn_rsp", False, 0, None)
            return
        self._adv_stop()
        c = Conn(self._new_handle(), src, central_handle, False, target, self._id_addr(), central_ota, self._resolve(central_ota))
        self._conns[c.handle] = c
        air.send(self.id, src, "conn_rsp", True, c.handle, target)
        self._irq_addr(_IRQ_CENTRAL_CONNECT, c.handle, c.peer_id)

    def _conn_rsp(self, src, args):
        ok, peer_handle = args[0], args[1]
        attempt = self._connecting
        if not ok:
            if attempt is not None:
                attempt[3] = 0
            return
        if attempt is None or tuple(args[2]) != (attempt[0], attempt[1]):
            air.send(self.id, src, "L", peer_handle, "disc", _REASON_LOCAL)
            return
        self._connecting = None
        ota = (attempt[0], attempt[1])
        c = Conn(attempt[4], src, peer_handle, True, self._ota(), self._id_addr(), ota, self._resolve(ota))
        self._conns[c.handle] = c
        self._irq_addr(_IRQ_PERIPHERAL_CONNECT, c.handle, c.peer_id)

    def gap_disconnect(self, conn_handle):
        self._need_active()
        c = self._conns.get(conn_handle)
        if c is None:
            return False
        air.send(self.id, c.peer, "L", c.peer_handle, "disc", _REASON_REMOTE)
        self._later(0, Device._drop_handle, conn_handle, _REASON_LOCAL)
        return True

    def _drop_handle(self, handle, reason):
        c = self._conns.get(handle)
        if c is not None:
            self._drop(c, reason)

    def _drop(self, c, reason):
        """ble_gap_conn_broken: the security procedure ends first (an encryption IRQ),
        pending client operations fail with BLE_HS_ENOTCONN, then the disconnect IRQ."""
        if self._conns.get(c.handle) is not c:
            return
        if c.smp is not None:
            c.smp = None
            self._enc_irq(c)
        for kind, handle in c.ops.values():
            if kind == "read":
                self._gap_irq(_IRQ_GATTC_READ_DONE, (c.handle, handle, _BLE_HS_ENOTCONN))
            elif kind == "write":
                self._gap_irq(_IRQ_GATTC_WRITE_DONE, (c.handle, handle, _BLE_HS_ENOTCONN))
        c.ops = {}
        del self._conns[c.handle]
        if self._chr_disc == c.handle:
            self._chr_disc = False
        ev = _IRQ_PERIPHERAL_DISCONNECT if c.master else _IRQ_CENTRAL_DISCONNECT
        self._irq_addr(ev, c.handle, c.peer_id)

    def _peer_gone(self, dev_id):
        for c in list(self._conns.values()):
            if c.peer == dev_id:
                self._drop(c, _REASON_TIMEOUT)

    def _link(self, c, op, *args):
        air.send(self.id, c.peer, "L", c.peer_handle, op, *args)

    def _conn(self, conn_handle):
        c = self._conns.get(conn_handle)
        if c is None:
            raise OSError(_ENOTCONN)
        return c

    # -- security -------------------------------------------------------------------------
    def gap_pair(self, conn_handle):
        c = self._conns.get(conn_handle)
        if c is None:
            raise OSError(_ENOTCONN)
        rc = smp.gap_pair(self, c)
        if rc:
            raise OSError(rc)

    def gap_passkey(self, conn_handle, action, passkey):
        c = self._conns.get(conn_handle)
        if c is None:
            raise OSError(_ENOENT)
        rc = smp.inject(self, c, action, passkey)
        if rc:
            raise OSError(rc)

    def _enc_irq(self, c):
        self._gap_irq(_IRQ_ENCRYPTION_UPDATE, (c.handle, int(c.encrypted), int(c.authenticated), int(c.bonded), c.key_size))

    def _irq_passkey(self, c, action, number):
        self._gap_irq(_IRQ_PASSKEY_ACTION, (c.handle, action, number))

    # -- GATT server ------------------------------------------------------------------------
    def gatts_register_services(self, services):
        self._need_active()
        if self._adv is not None or self._scan is not None or self._connecting is not None or self._conns:
            raise OSError(_EBUSY)  # ble_gatts_reset: not mutable while GAP is busy
        parsed = []
        for s in services:
            s = tuple(s)
            if len(s) != 2:
                raise ValueError("requested length 2 but object has length %d" % len(s))
            if not isinstance(s[0], UUID):
                raise ValueError("invalid service UUID")
            chars = []
            for ch in s[1]:
                ch = tuple(ch)
                if len(ch) < 2 or len(ch) > 3:
                    raise ValueError("invalid characteristic tuple")
                if not isinstance(ch[0], UUID):
                    raise ValueError("invalid characteristic UUID")
                dscs = []
                for ds in ch[2] if len(ch) == 3 else ():
                    ds = tuple(ds)
                    if len(ds) != 2:
                        raise ValueError("requested length 2 but object has length %d" % len(ds))
                    if not isinstance(ds[0], UUID):
                        raise ValueError("invalid descriptor UUID")
                    dscs.append((ds[0], int(ds[1])))
                chars.append((ch[0], int(ch[1]), dscs))
            parsed.append((s[0], chars))
        return self._server.register(parsed)

    def gatts_read(self, value_handle):
        if not self._active:
            return b""
        v = self._server.read(value_handle)
        return b"" if v is None else v

    def gatts_write(self, value_handle, data, send_update=False):
        self._need_active()
        data = buf(data)
        if not self._server.write(value_handle, data):
            raise OSError(_EINVAL)
        if send_update:
            cccd.chr_updated(self, value_handle)  # ble_gatts_chr_updated
        return len(data)

    def _send_update(self, c, value_handle, indicate):
        """A notification or indication NimBLE sends by itself: the value read through the
        access callback (no connection), Service Changed's from ble_svc_gatt_changed."""
        if value_handle == self._server.changed_handle:
            a, b = self._sc_range
            data = bytes((a & 0xFF, a >> 8, b & 0xFF, b >> 8))
        else:
            self._irq(_IRQ_GATTS_READ_REQUEST, (_CONN_NONE, value_handle))
            data = self.gatts_read(value_handle)
        self._link(c, "ntf", value_handle, data[: c.mtu - 3], indicate)
        self.att_pdus += 2 if indicate else 1  # an indication is confirmed

    # the firmware module's functions (tests/lib/_aioble_pm_cccd.py calls them)
    def _cccd_install(self):
        if not self._store_cbs:
            raise OSError(1)  # EPERM: the binding has not set its store callbacks yet
        hooked, self.cccd_hooked = self.cccd_hooked, True
        return not hooked

    def _cccd_changed(self, start, end):
        if not 1 <= start <= end <= 0xFFFF:
            raise ValueError("need 1 <= start <= end <= 0xffff")
        self._need_active()
        self._sc_range = (start, end)
        cccd.chr_updated(self, self._server.changed_handle)

    def _cccd_sc_handle(self):
        self._need_active()
        return self._server.changed_handle

    def gatts_notify(self, conn_handle, value_handle, data=None):
        self._notify(conn_handle, value_handle, data, False)

    def gatts_indicate(self, conn_handle, value_handle, data=None):
        self._notify(conn_handle, value_handle, data, True)

    def _notify(self, conn_handle, value_handle, data, indicate):
        self._need_active()
        c = self._conn(conn_handle)
        if data is None:
            # NimBLE reads the value through the access callback, which raises the
            # read-request IRQ with no connection (synchronous)
            self._irq(_IRQ_GATTS_READ_REQUEST, (_CONN_NONE, value_handle))
            data = self.gatts_read(value_handle)
        else:
            data = buf(data)
        self._link(c, "ntf", value_handle, data[: c.mtu - 3], indicate)
        self.att_pdus += 2 if indicate else 1

    def gatts_set_buffer(self, value_handle, size, append=False):
        self._need_active()
        if not self._server.set_buffer(value_handle, size, append):
            raise OSError(_EINVAL)

    def _peer_has_ltk(self, c):
        s = self._read_sec(smp.PEER_SEC, c.peer_id)
        return s is not None and s.ltk is not None

    def _serve(self, c, op, a):
        srv = self._server
        if op == "read":
            opid, handle = a
            attr = srv.attr(handle)
            err = gatt.ERR_INVALID_HANDLE if attr is None else gatt.check_access(attr, False, c, lambda: self._peer_has_ltk(c))
            data = b""
            if not err:
                if attr.kind in (gatt.VAL, gatt.DSC) and handle in srv.db:
                    r = self._gap_irq(_IRQ_GATTS_READ_REQUEST, (c.handle, handle))
                    err = r if isinstance(r, int) else 0
                    data = srv.read(handle) or b""
                elif attr.kind == gatt.CCCD:
                    v = c.cccd.get(handle - 1, 0)
                    data = bytes((v & 0xFF, v >> 8))
                elif handle == srv.name_handle:
                    data = self._gap_name
                elif handle == srv.appearance_handle:
                    data = b"\x00\x00"
                elif attr.kind == gatt.SVC:
                    data = bytes(attr.uuid)
                elif attr.kind == gatt.DECL:
                    v = srv.attr(handle + 1)
                    data = bytes((attr.flags & 0xFF, v.handle & 0xFF, v.handle >> 8)) + bytes(v.uuid)
            self._link(c, "rsp", opid, gatt.ATT_BASE + err if err else 0, data[: c.mtu - 1])
            self.att_pdus += 2
        elif op == "write":
            opid, handle, data = a
            attr = srv.attr(handle)
            err = gatt.ERR_INVALID_HANDLE if attr is None else gatt.check_access(attr, True, c, lambda: self._peer_has_ltk(c))
            if not err and attr.kind == gatt.VAL and handle not in srv.db:
                err = gatt.ERR_WRITE_NOT_PERMITTED  # name, appearance, service changed
            if not err and attr.kind == gatt.CCCD:
                err = gatt.cccd_write_error(attr, data)
            if not err:
                if attr.kind == gatt.CCCD:
                    c.cccd[handle - 1] = data[0] | data[1] << 8
                    err = cccd.client_write(self, c, handle - 1, c.cccd[handle - 1])
                else:
                    srv.remote_write(handle, data)
                    self._gap_irq(_IRQ_GATTS_WRITE, (c.handle, handle))
            self.att_pdus += 1
            if opid:
                self._link(c, "rsp", opid, gatt.ATT_BASE + err if err else 0, b"")
                self.att_pdus += 1
        elif op == "svcs":
            opid, uuid = a
            # Read By Group Type ends the last service's group at 0xFFFF, Find By Type
            # Value at its last attribute (ble_att_svr.c; both measured on real NimBLE)
            last = srv.services()[-1] if uuid is None else None
            out = [[s.handle, 0xFFFF if s is last else s.end, bytes(s.uuid)] for s in srv.services()
                   if uuid is None or bytes(s.uuid) == uuid]
            self.att_pdus += gatt.disc_pdus("svcs" if uuid is None else "svcs_uuid", out, c.mtu)
            self._link(c, "found", opid, out)
        elif op == "chrs":
            opid, start, end = a
            out = [[d, v, p, bytes(u)] for d, v, p, u in srv.characteristics(start, end)]
            self.att_pdus += gatt.disc_pdus("chrs", out, c.mtu, start, end)
            self._link(c, "found", opid, out)
        elif op == "dscs":
            opid, start, end = a
            out = [[h, bytes(u)] for h, u in srv.descriptors(start, end)]
            self.att_pdus += gatt.disc_pdus("dscs", out, c.mtu, start + 1, end)
            self._link(c, "found", opid, out)

    # -- GATT client ------------------------------------------------------------------------
    def _client(self, conn_handle, kind, handle, op, *args):
        self._need_active()
        c = self._conn(conn_handle)
        opid = self._next_op
        self._next_op += 1
        c.ops[opid] = (kind, handle)
        self._link(c, op, opid, *args)
        return c

    def gattc_discover_services(self, conn_handle, uuid=None):
        if uuid is not None and not isinstance(uuid, UUID):
            raise TypeError("UUID")
        self._client(conn_handle, "svcs", uuid is not None, "svcs", None if uuid is None else bytes(uuid))

    def gattc_discover_characteristics(self, conn_handle, start_handle, end_handle, uuid=None):
        if uuid is not None and not isinstance(uuid, UUID):
            raise TypeError("UUID")
        self._need_active()
        if self._chr_disc is not False:
            raise OSError(_EBUSY)  # one characteristic discovery at a time
        self._client(conn_handle, "chrs", (end_handle, uuid, start_handle), "chrs", start_handle, end_handle)
        self._chr_disc = conn_handle

    def gattc_discover_descriptors(self, conn_handle, start_handle, end_handle):
        self._client(conn_handle, "dscs", (start_handle, end_handle), "dscs", start_handle, end_handle)

    def gattc_read(self, conn_handle, value_handle):
        self._client(conn_handle, "read", value_handle, "read", value_handle)

    def gattc_write(self, conn_handle, value_handle, data, mode=0):
        if mode not in (0, 1):
            raise OSError(_EINVAL)
        data = buf(data)
        self._need_active()
        c = self._conn(conn_handle)
        data = data[: c.mtu - 3]  # one ATT PDU: the binding cuts the value to MTU-3
        if mode == 0:
            self._link(c, "write", 0, value_handle, data)
            self.att_pdus += 1
        else:
            self._client(conn_handle, "write", value_handle, "write", value_handle, data)

    def gattc_exchange_mtu(self, conn_handle):
        self._need_active()
        c = self._conn(conn_handle)
        if c.mtu_done:
            raise OSError(_EALREADY)
        c.mtu_done = True
        self._link(c, "mtu", self._mtu)
        self.att_pdus += 2

    def _client_rsp(self, c, op, a):
        opid = a[0]
        pending = c.ops.pop(opid, None)
        if pending is None:
            return
        kind, arg = pending
        ch = c.handle
        if op == "rsp":
            self.att_pdus += 2
            status, data = a[1], a[2]
            if kind == "read":
                if not status:
                    self._irq_data(_IRQ_GATTC_READ_RESULT, (ch, arg), data)
                self._gap_irq(_IRQ_GATTC_READ_DONE, (ch, arg, status))
            else:
                self._gap_irq(_IRQ_GATTC_WRITE_DONE, (ch, arg, status))
            return
        found = a[1]
        if kind == "svcs":
            self.att_pdus += gatt.disc_pdus("svcs_uuid" if arg else "svcs", found, c.mtu)
            for start, end, u in found:
                self._gap_irq(_IRQ_GATTC_SERVICE_RESULT, (ch, start, end, UUID(u)))
            self._gap_irq(_IRQ_GATTC_SERVICE_DONE, (ch, 0))
        elif kind == "chrs":
            # MicroPython reports a characteristic once the next one shows its end
            # (ble_gattc_characteristic_cb), filtering by UUID itself
            end, want, start = arg
            self.att_pdus += gatt.disc_pdus("chrs", found, c.mtu, start, end)
            pending_chr = None
            for decl, val, props, u in found:
                if pending_chr is not None:
                    self._gap_irq(_IRQ_GATTC_CHARACTERISTIC_RESULT, (ch, decl - 1) + pending_chr)
                    pending_chr = None
                u = UUID(u)
                if want is None or u == want:
                    pending_chr = (val, props, u)
            if pending_chr is not None:
                self._gap_irq(_IRQ_GATTC_CHARACTERISTIC_RESULT, (ch, end) + pending_chr)
            self._chr_disc = False
            self._gap_irq(_IRQ_GATTC_CHARACTERISTIC_DONE, (ch, 0))
        elif kind == "dscs":
            self.att_pdus += gatt.disc_pdus("dscs", found, c.mtu, arg[0] + 1, arg[1])
            for h, u in found:
                self._gap_irq(_IRQ_GATTC_DESCRIPTOR_RESULT, (ch, h, UUID(u)))
            self._gap_irq(_IRQ_GATTC_DESCRIPTOR_DONE, (ch, 0))

    # -- link messages ------------------------------------------------------------------------
    def _on_link(self, c, op, a):
        if op in ("read", "write", "svcs", "chrs", "dscs"):
            self._serve(c, op, a)
        elif op in ("rsp", "found"):
            self._client_rsp(c, op, a)
        elif op == "ntf":
            handle, data, indicate = a
            self.att_pdus += 2 if indicate else 1
            self._irq_data(_IRQ_GATTC_INDICATE if indicate else _IRQ_GATTC_NOTIFY, (c.handle, handle), data)
            if indicate:
                self._link(c, "ind_ack", handle)
        elif op == "ind_ack":
            if cccd.indicate_ack(self, c, a[0]):  # no IRQ for an ack NimBLE did not expect
                self._gap_irq(_IRQ_GATTS_INDICATE_DONE, (c.handle, a[0], 0))
        elif op == "mtu":
            c.mtu = min(self._mtu, a[0])
            c.mtu_done = True
            self._link(c, "mtu_rsp", self._mtu)
            self.att_pdus += 2
            self._gap_irq(_IRQ_MTU_EXCHANGED, (c.handle, c.mtu))
        elif op == "mtu_rsp":
            c.mtu = min(self._mtu, a[0])
            self._gap_irq(_IRQ_MTU_EXCHANGED, (c.handle, c.mtu))
        elif op == "disc":
            self._drop(c, a[0])
        else:
            smp.on_msg(self, c, op, a)


def _check_index(i, what):
    """ble_store_iterate passes its index through a uint8_t: at 256 it wraps to 0 and a
    store with that many records is iterated forever. Fail where the real stack hangs."""
    if i >= _LOOP_LIMIT:
        raise RuntimeError("blesim: %s iteration reached index 256: the 8-bit index wraps to 0 "
                           "and NimBLE would iterate this store forever" % what)
