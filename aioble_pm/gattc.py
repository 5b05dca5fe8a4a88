"""Remote database cache (GATT client cache): a bonded peer's services, characteristics
and descriptors, stored as one sealed chunk per peer under data ID 5 (Nordic's
PM_PEER_DATA_ID_GATT_REMOTE), so a reconnection reads without service discovery.

The chunk's byte layout is docs/GATTC.md's; encode() and decode() are its only writer
and reader, and decode() refuses anything that is not a well-formed database (bad
CRC, wrong lengths, handles out of order or out of range): the caller then discovers
again. The aioble objects are built in aiohooks.py (the glue); this module decides
when to use, store and drop the cache.

The cache is dropped when the peer indicates Service Changed (0x2A05) at the handle
the cache lists for it, when its bond is deleted or evicted (peers.py deletes data ID
5 with the bond), and by forget_services(). It is never stored for a peer without a
bond. RAM: one small int per peer that sent an indication (its Service Changed handle).
"""
from micropython import const

from .peerrec import DATA_GATT_REMOTE, record_id, seal, unseal

VERSION = const(1)
_UUID_LENS = (2, 4, 16)  # 16-, 32-, 128-bit UUIDs, little-endian as bytes(bluetooth.UUID)
_SC_UUID = b"\x05\x2a"  # Service Changed characteristic
_GATT_UUID = b"\x01\x18"  # GATT service
_CCCD_UUID = b"\x02\x29"
_NONE = const(0)  # "this peer's cache lists no Service Changed handle"


# --- the chunk ------------------------------------------------------------------------
# A database is a list of services (start, end, uuid, chars); chars are
# (value_handle, end_handle, properties, uuid, dscs); dscs are (handle, uuid);
# uuids are bytes of 2, 4 or 16.

def check(db):
    """ValueError naming what is wrong unless `db` is a well-formed database: services
    ascending and disjoint, each characteristic inside its service after its
    declaration handle, each descriptor inside its characteristic, counts <= 255."""
    if len(db) > 255:
        raise ValueError("more than 255 services")
    prev = 0
    for svc in db:
        start, end, uuid, chars = svc
        _uuid(uuid)
        if not prev < start <= end <= 0xFFFF:
            raise ValueError("service handles %d..%d out of order or range" % (start, end))
        prev = end
        if len(chars) > 255:
            raise ValueError("more than 255 characteristics in a service")
        last = start  # the service declaration
        for value, cend, props, cuuid, dscs in chars:
            _uuid(cuuid)
            # the declaration sits at value - 1, after everything before it
            if not last + 2 <= value <= cend <= end or not 0 <= props <= 0xFF:
                raise ValueError("characteristic %d..%d out of order or range" % (value, cend))
            if len(dscs) > 255:
                raise ValueError("more than 255 descriptors in a characteristic")
            h = value
            for dh, duuid in dscs:
                _uuid(duuid)
                if not h < dh <= cend:
                    raise ValueError("descriptor %d out of order or range" % dh)
                h = dh
            last = cend


def _uuid(u):
    if type(u) is not bytes or len(u) not in _UUID_LENS:
        raise ValueError("a UUID must be 2, 4 or 16 bytes")


def size(db):
    """Bytes of the sealed chunk for `db` (docs/GATTC.md)."""
    n = 2 + 4
    for _, _, u, chars in db:
        n += 6 + len(u)
        for _, _, _, cu, dscs in chars:
            n += 7 + len(cu)
            for _, du in dscs:
                n += 3 + len(du)
    return n


def encode(db):
    """The sealed chunk of a well-formed database (check() raises otherwise)."""
    check(db)
    out = bytearray(size(db) - 4)
    out[0] = VERSION
    out[1] = len(db)
    o = 2
    for start, end, u, chars in db:
        o = _put16(out, o, start)
        o = _put16(out, o, end)
        o = _put_uuid(out, o, u)
        out[o] = len(chars)
        o += 1
        for value, cend, props, cu, dscs in chars:
            o = _put16(out, o, value)
            o = _put16(out, o, cend)
            out[o] = props
            o = _put_uuid(out, o + 1, cu)
            out[o] = len(dscs)
            o += 1
            for dh, du in dscs:
                o = _put_uuid(out, _put16(out, o, dh), du)
    return seal(out)


def _put16(buf, o, v):
    buf[o] = v & 0xFF
    buf[o + 1] = v >> 8
    return o + 2


def _put_uuid(buf, o, u):
    buf[o] = len(u)
    buf[o + 1 : o + 1 + len(u)] = u
    return o + 1 + len(u)


def decode(chunk):
    """The database in a sealed chunk, or None when the chunk is anything but one
    well-formed database of this version (never raises for bad bytes)."""
    v = unseal(chunk)
    if v is None or len(v) < 2 or v[0] != VERSION:
        return None
    try:
        r = _Reader(v)
        r.o = 1  # after the version
        db = []
        for _ in range(r.u8()):
            start, end, u = r.u16(), r.u16(), r.uuid()
            chars = []
            for _ in range(r.u8()):
                value, cend, props, cu = r.u16(), r.u16(), r.u8(), r.uuid()
                chars.append((value, cend, props, cu, [(r.u16(), r.uuid()) for _ in range(r.u8())]))
            db.append((start, end, u, chars))
        if r.o != len(v):
            return None  # bytes after the last service
        check(db)
    except (IndexError, ValueError):
        return None
    return db


class _Reader:
    def __init__(self, buf):
        self.b = buf
        self.o = 0

    def u8(self):
        self.o += 1
        return self.b[self.o - 1]

    def u16(self):
        self.o += 2
        return self.b[self.o - 2] | self.b[self.o - 1] << 8

    def uuid(self):
        n = self.u8()
        if n not in _UUID_LENS or self.o + n > len(self.b):
            raise ValueError
        self.o += n
        return bytes(self.b[self.o - n : self.o])


def sc_handle(db):
    """Value handle of the peer's Service Changed characteristic (0: none listed)."""
    for _, _, u, chars in db:
        if u == _GATT_UUID:
            for value, _, _, cu, _ in chars:
                if cu == _SC_UUID:
                    return value
    return _NONE


def char_ends(service_end, raw):
    """Characteristics (value, end, props, uuid) from discovery's (value, props, uuid)
    in handle order: each ends before the next one's declaration (value - 1, Core Vol 3
    Part G 3.3), the last at its service's end."""
    out = []
    for i, (value, props, u) in enumerate(raw):
        end = raw[i + 1][0] - 2 if i + 1 < len(raw) else service_end
        out.append((value, end, props, u))
    return out


# --- the cache of a PeerManager -------------------------------------------------------

class Cache:
    """The PM's remote database cache: loads, stores and drops data ID 5 records."""

    def __init__(self, pm):
        self.pm = pm
        self.store = pm._db.store
        self.sc = {}  # peer ID -> Service Changed value handle its cache lists (0: none)
        self.busy = {}  # conn handle -> [value handles of indications during discovery]

    def load(self, peer_id):
        """The cached database of the peer, or None (none stored, or damaged: then the
        record is deleted, so the next discovery replaces it)."""
        rid = record_id(peer_id, DATA_GATT_REMOTE)
        try:
            chunk = self.store.read(rid)
        except OSError:  # CorruptError: the ZMS CRC failed
            chunk = b""
        if chunk is None:
            self.sc[peer_id] = _NONE
            return None
        db = decode(chunk)
        if db is None:
            self._delete(peer_id)
            return None
        self.sc[peer_id] = sc_handle(db)
        return db

    def save(self, peer_id, db):
        """Store the peer's database (unchanged: ZMS writes nothing). False when it
        cannot be kept (malformed, too large, flash full)."""
        try:
            chunk = encode(db)
        except ValueError:
            return False
        try:  # ZMS programs nothing when the record holds this value already
            self.store.write(record_id(peer_id, DATA_GATT_REMOTE), chunk)
        except (OSError, ValueError) as e:  # ENOSPC, or larger than a record may be
            self._delete(peer_id)
            from .events import PEER_DATA_UPDATE_FAILED

            self.pm._emit(PEER_DATA_UPDATE_FAILED, peer_id=peer_id, error=e)
            return False
        self.sc[peer_id] = sc_handle(db)
        return True

    def forget(self, peer_id):
        """Drop the peer's cache; True if one was stored."""
        try:
            had = self.store.length(record_id(peer_id, DATA_GATT_REMOTE)) is not None
        except OSError:
            had = True
        self._delete(peer_id)
        return had

    def _delete(self, peer_id):
        self.sc[peer_id] = _NONE
        try:
            self.store.delete(record_id(peer_id, DATA_GATT_REMOTE))
        except OSError:
            pass  # the flash refuses: decode() still refuses the damaged chunk

    def indicated(self, conn_handle, value_handle):
        """An indication came on a link: if it is the peer's Service Changed, drop the
        peer's cache. Any range counts: the cache describes every handle of the peer,
        the gaps between services too, so no range leaves it valid (Android's stack
        drops the whole cache as well)."""
        seen = self.busy.get(conn_handle)
        if seen is not None:
            seen.append(value_handle)  # judged when the discovery it interrupts ends
        link = self.pm._links.get(conn_handle)
        pid = None if link is None else link.peer_id
        if pid is None:
            return
        h = self.sc.get(pid)
        if h is None:  # first indication from this peer since boot: learn its handle
            self.load(pid)
            h = self.sc.get(pid)
        if h != _NONE and h == value_handle:
            self._delete(pid)


def cache(pm):
    """The PeerManager's Cache, made on first use."""
    c = pm._gattc
    if c is None:
        c = pm._gattc = Cache(pm)
    return c


def indicated(pm, conn_handle, value_handle):
    """manager.irq's hook for _IRQ_GATTC_INDICATE."""
    cache(pm).indicated(conn_handle, value_handle)


def forget_services(pm, peer_id):
    """Drop a stored peer's remote database cache; True if there was one."""
    pm._db.check(peer_id)
    return cache(pm).forget(peer_id)


async def services(pm, conn, uuid=None, timeout_ms=10000, cached=True):
    """The peer's services as aioble ClientService objects whose characteristics() and
    descriptors() answer from the database without discovery: the cached one when the
    peer is bonded and its cache valid (and `cached`), else discovered (and stored if
    the peer is bonded)."""
    from . import aiohooks

    aiohooks.conn_handle(conn)  # TypeError for anything but a DeviceConnection
    if uuid is not None and not aiohooks.is_uuid(uuid):
        raise TypeError("uuid must be a bluetooth.UUID or None, not %s" % type(uuid).__name__)
    if type(timeout_ms) is not int:
        raise TypeError("timeout_ms must be an int, not %s" % type(timeout_ms).__name__)
    if timeout_ms <= 0:
        raise ValueError("timeout_ms must be > 0, got %d" % timeout_ms)
    link = pm._link(conn)
    c = cache(pm)
    db = c.load(link.peer_id) if cached and link.peer_id is not None else None
    found = db is None
    if found:
        db = await _discover(c, conn, link.handle, timeout_ms)
        if link.peer_id is not None:  # bonded now (perhaps during the discovery)
            c.save(link.peer_id, db)
    out = aiohooks.build(conn, db)
    if found:
        await _subscribe_sc(db, out)
    return [s for s in out if uuid is None or s.uuid == uuid]


async def _discover(c, conn, handle, timeout_ms):
    """aioble's own discovery; once more if Service Changed came meanwhile."""
    from . import aiohooks

    for _ in range(2):
        c.busy[handle] = seen = []
        try:
            db = await aiohooks.discover(conn, timeout_ms, char_ends)
        finally:
            c.busy.pop(handle, None)
        h = sc_handle(db)
        if not h or h not in seen:
            break
    return db


async def _subscribe_sc(db, services):
    """Ask for Service Changed indications (Core Vol 3 Part G 7.1) after a discovery;
    a bonded server keeps the CCCD for later connections. A refusal is not an error
    of services(): the cache then lasts until the app or a bond delete drops it."""
    from . import aiohooks

    h = sc_handle(db)
    if not h:
        return
    ch = aiohooks.find_characteristic(services, h)
    if ch is not None and ch.properties & 0x20:
        try:
            await ch.subscribe(notify=False, indicate=True)
        except Exception:  # GattError, timeout, no CCCD, link gone
            pass
