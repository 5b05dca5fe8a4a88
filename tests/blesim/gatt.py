"""GATT server database and the ATT exchange between two simulated devices.

Handle layout as NimBLE builds it (ble_gatts.c, services/gap, services/gatt): GAP
service (device name, appearance: MicroPython's syscfg.h disables PPCP and central
address resolution), GATT service (Service Changed + CCCD), then the app's services;
per characteristic: declaration, value, CCCD (if notify or indicate), then the app's
descriptors. active(True) registers GAP+GATT at 1-9; each gatts_register_services
resets the attributes but not ble_att_svr_id (ble_att_svr_reset keeps it), so handles
go on counting: after the first call GAP is 10-14, GATT 15-18 (Service Changed value
17, as measured on the unix build) and the app starts at 19. Values live in a MicroPython-style gatts_db
(extmod/modbluetooth.c: 20-byte default buffers, remote writes truncated to the buffer,
gatts_set_buffer append mode). ESP-IDF builds add more GAP/GATT characteristics
(UNVERIFIED which), so only rely on relative handles.
"""
from micropython import const
from .uuid import UUID

_DEFAULT_ATTR_LEN = const(20)
_F_READ = const(0x0002)
_F_WRITE_NR = const(0x0004)
_F_WRITE = const(0x0008)
_F_NOTIFY = const(0x0010)
_F_INDICATE = const(0x0020)
_F_READ_ENC = const(0x0200)
_F_READ_AUTHEN = const(0x0400)
_F_WRITE_ENC = const(0x1000)
_F_WRITE_AUTHEN = const(0x2000)

# ATT error codes (Core Vol 3 Part F 3.4.1.1); NimBLE reports them to the app as
# BLE_HS_ERR_ATT_BASE (0x100) + code, which MicroPython passes through as status.
ERR_INVALID_HANDLE = const(0x01)
ERR_READ_NOT_PERMITTED = const(0x02)
ERR_WRITE_NOT_PERMITTED = const(0x03)
ERR_INSUFFICIENT_AUTHEN = const(0x05)
ERR_REQ_NOT_SUPPORTED = const(0x06)
ERR_INVALID_ATTR_VALUE_LEN = const(0x0D)
ERR_ATTR_NOT_FOUND = const(0x0A)
ERR_INSUFFICIENT_ENC = const(0x0F)
ATT_BASE = const(0x100)

SVC = const(0)
DECL = const(1)
VAL = const(2)
CCCD = const(3)
DSC = const(4)

_UUID_PRIMARY = UUID(0x2800)
_UUID_CHR = UUID(0x2803)
_UUID_CCCD = UUID(0x2902)


class Attr:
    def __init__(self, handle, kind, uuid, flags=0):
        self.handle = handle
        self.kind = kind
        self.uuid = uuid
        self.flags = flags
        self.end = handle  # services: last handle of the service
        self.chr_flags = 0  # CCCDs: the characteristic's flags (which bits it allows)


class Server:
    def __init__(self):
        self.next = 1  # ble_att_svr_id + 1: reset only by ble_hs_init (activation)
        self.register(())

    def _add(self, kind, uuid, flags=0):
        a = Attr(self.next, kind, uuid, flags)
        self.next += 1
        self.attrs.append(a)
        return a

    def register(self, services):
        """Rebuild the database; returns a tuple of handle tuples as
        gatts_register_services does. `services` is already validated."""
        self.attrs = []
        self.base = self.next
        self.db = {}
        gap = self._service(UUID(0x1800), ((UUID(0x2A00), _F_READ, ()), (UUID(0x2A01), _F_READ, ())))
        self.name_handle, self.appearance_handle = gap
        del self.db[self.name_handle]  # served by the GAP service itself, not gatts_db
        del self.db[self.appearance_handle]
        (self.changed_handle,) = self._service(UUID(0x1801), ((UUID(0x2A05), _F_INDICATE, ()),))
        del self.db[self.changed_handle]
        return tuple(self._service(u, chars) for u, chars in services)

    def _service(self, uuid, chars):
        svc = self._add(SVC, uuid)
        handles = []
        for cu, flags, dscs in chars:
            self._add(DECL, _UUID_CHR, flags)
            v = self._add(VAL, cu, flags)
            self.db[v.handle] = [bytearray(_DEFAULT_ATTR_LEN), 0, False]
            handles.append(v.handle)
            if flags & (_F_NOTIFY | _F_INDICATE):
                self._add(CCCD, _UUID_CCCD, _F_READ | _F_WRITE).chr_flags = flags
            for du, dflags in dscs:
                d = self._add(DSC, du, dflags)
                self.db[d.handle] = [bytearray(_DEFAULT_ATTR_LEN), 0, False]
                handles.append(d.handle)
        svc.end = self.next - 1
        return tuple(handles)

    def attr(self, handle):
        i = handle - self.base
        if 0 <= i < len(self.attrs):
            return self.attrs[i]
        return None

    def _slice(self, first, last):
        """Attributes with first <= handle <= last."""
        return self.attrs[max(0, first - self.base) : max(0, last - self.base + 1)]

    # gatts_db (local side)
    def read(self, handle):
        e = self.db.get(handle)
        if e is None:
            return None
        data = bytes(e[0][: e[1]])
        if e[2]:
            e[1] = 0
        return data

    def write(self, handle, data):
        e = self.db.get(handle)
        if e is None:
            return False
        if len(data) > len(e[0]):
            e[0] = bytearray(len(data))
        e[0][: len(data)] = data
        e[1] = len(data)
        return True

    def set_buffer(self, handle, size, append):
        e = self.db.get(handle)
        if e is None:
            return False
        e[0] = bytearray(size)
        e[1] = 0
        e[2] = bool(append)
        return True

    def remote_write(self, handle, data):
        """A peer's write: appended or replaced, truncated to the buffer size
        (characteristic_access_cb in modbluetooth_nimble.c)."""
        e = self.db[handle]
        off = e[1] if e[2] else 0
        n = min(len(e[0]), len(data) + off)
        e[0][off:n] = data[: n - off]
        e[1] = n

    def services(self):
        return [a for a in self.attrs if a.kind == SVC]

    def characteristics(self, start, end):
        """(decl handle, value handle, properties, uuid) in [start, end]."""
        out = []
        for a in self._slice(start, end):
            if a.kind == VAL:
                out.append((a.handle - 1, a.handle, a.flags & 0xFF, a.uuid))
        return out

    def descriptors(self, start, end):
        """(handle, uuid) of every attribute after `start` up to `end`, as NimBLE's
        ble_gattc_disc_all_dscs reports them."""
        return [(a.handle, a.uuid if a.kind != DECL else _UUID_CHR) for a in self._slice(start + 1, end)]


def cccd_write_error(attr, data):
    """ble_gatts_clt_cfg_access_locked: a CCCD value is 2 bytes, and only the bits the
    characteristic allows (notify 1, indicate 2) may be set; 0 if the write is good."""
    if len(data) != 2:
        return ERR_INVALID_ATTR_VALUE_LEN
    allowed = (1 if attr.chr_flags & _F_NOTIFY else 0) | (2 if attr.chr_flags & _F_INDICATE else 0)
    if (data[0] | data[1] << 8) & ~allowed:
        return ERR_REQ_NOT_SUPPORTED
    return 0


def check_access(attr, write, conn, peer_has_ltk):
    """ATT error code for this access on this link, or 0 (ble_att_svr_check_perms):
    on an unencrypted link a secured attribute gives INSUFFICIENT_ENC if the store
    holds an LTK for the peer (peer_has_ltk() reads it), else INSUFFICIENT_AUTHEN."""
    f = attr.flags
    if attr.kind == SVC or attr.kind == DECL:
        return ERR_WRITE_NOT_PERMITTED if write else 0
    if attr.kind == CCCD:
        return 0
    if attr.kind == DSC:
        if write:
            return 0 if f & (_F_WRITE | _F_WRITE_NR) else ERR_WRITE_NOT_PERMITTED
        return 0 if f & _F_READ else ERR_READ_NOT_PERMITTED
    if write:
        if not f & (_F_WRITE | _F_WRITE_NR):
            return ERR_WRITE_NOT_PERMITTED
        enc, authen = f & _F_WRITE_ENC, f & _F_WRITE_AUTHEN
    else:
        if not f & _F_READ:
            return ERR_READ_NOT_PERMITTED
        enc, authen = f & _F_READ_ENC, f & _F_READ_AUTHEN
    if (enc or authen) and not conn.encrypted:
        return ERR_INSUFFICIENT_ENC if peer_has_ltk() else ERR_INSUFFICIENT_AUTHEN
    if authen and not conn.authenticated:
        return ERR_INSUFFICIENT_AUTHEN
    return 0


# ATT PDUs of the client procedures MicroPython starts (ble_gattc.c of NimBLE 42849560):
# each discovery sends a request per response; a response carries as many entries of one
# size as fit in MTU - 2 (ble_att_svr.c stops at an entry of another size); the next
# request starts after the last entry, and the one that finds nothing gets an Error
# Response (Attribute Not Found), unless the last entry already reached the end handle.

def _rounds(sizes, room, last, end):
    """Request/response PDUs for entries of `sizes` (bytes each, in order), where
    `last` is the handle of the last entry and `end` the procedure's end handle."""
    n, i = 0, 0
    while i < len(sizes):
        k = 1
        while i + k < len(sizes) and sizes[i + k] == sizes[i] and (k + 1) * sizes[i] <= room:
            k += 1
        n += 2
        i += k
    return n + (0 if sizes and last >= end else 2)


def disc_pdus(kind, found, mtu, start=1, end=0xFFFF):
    """PDUs on the air for one discovery whose results are `found` (as the "found"
    message carries them: svcs [start, end, uuid]; chrs [decl, value, props, uuid];
    dscs [handle, uuid]). svcs_uuid: Find By Type Value (4-byte entries)."""
    room = mtu - 2
    if kind == "svcs":
        return _rounds([4 + len(u) for _, _, u in found], room, found[-1][1] if found else 0, 0xFFFF)
    if kind == "svcs_uuid":
        return _rounds([4] * len(found), mtu - 1, found[-1][1] if found else 0, 0xFFFF)
    if kind == "chrs":
        return _rounds([5 + len(u) for _, _, _, u in found], room, found[-1][0] if found else 0, end)
    return _rounds([2 + len(u) for _, u in found], room, found[-1][0] if found else 0, end)
