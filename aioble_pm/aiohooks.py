"""The one module that uses aioble's private parts, so a raw-`bluetooth` app never imports
it: putting the PM's IRQ handler first, the handle of a DeviceConnection, a connect to a
bonded peer behind its current RPA, auto-secure, and the remote database cache's discovery
and client objects. The parts: `core._irq_handlers`, `DeviceConnection._conn_handle`,
`central._connecting`, `Device._connection`, FACTS §5; the `_tuple()`/`_value_handle` of
registered services; the client handles and constructors, see the cache's section;
`GattError._status` and the client objects' `_connection()` for auto-secure. (The
whitelisted scan, connect and advertise helpers need aioble's public API only:
scanning.py.)
"""
import asyncio  # (unused here: imported before aioble, whose own chain of imports would
import time  # otherwise nest one level deeper in attach(): 5 KB more C stack)
import aioble
from aioble import core


_hooked = None  # the handler (of the last attached PeerManager) in aioble's dispatch
_register_orig = None  # aioble's own register_services, once watch_registration wrapped it


def hook(handler, shutdown):
    """Put `handler` first in aioble's IRQ dispatch (handlers run in order and the first
    non-None answer wins, FACTS §5.1), replacing a previously attached PeerManager's (two
    managers must not write one store); `shutdown` runs on aioble.stop(). Returns
    aioble's BLE object."""
    global _hooked
    handlers = getattr(core, "_irq_handlers", None)
    if handlers is None:
        raise RuntimeError("aioble_pm: this aioble has no _irq_handlers; use attach(ble, irq)")
    if _hooked in handlers:
        handlers.remove(_hooked)
    handlers.insert(0, handler)
    _hooked = handler
    core.register_irq_handler(None, shutdown)
    return core.ble


def watch_registration(on_registered):
    """After each aioble.register_services(*services), call on_registered(defs, handles,
    guards) with what aioble gave gatts_register_services, the handles it got back
    (gatts.py keeps the database's table) and {handle: (level, attr)} of the attributes
    protect() left for the PM to check (access.py). Wraps aioble's function once."""
    global _register_orig
    from aioble import server

    if _register_orig is None:
        _register_orig = server.register_services
    orig = _register_orig

    def register_services(*services):
        orig(*services)
        handles = []
        guards = {}
        for s in services:
            hs = []
            for c in s.characteristics:
                for a in [c] + c.descriptors:
                    hs.append(a._value_handle)
                    level = getattr(a, "_pm_guard", 0)
                    if level:
                        guards[a._value_handle] = (level, a)
            handles.append(hs)
        on_registered(tuple(s._tuple() for s in services), handles, guards)

    server.register_services = aioble.register_services = register_services


def attr_kind(attr):
    """"characteristic" or "descriptor" for an aioble server attribute not yet
    registered (protect() must come before registration: NimBLE fixes permissions then)."""
    from aioble.server import Characteristic, Descriptor

    if isinstance(attr, Characteristic):
        kind = "characteristic"
    elif isinstance(attr, Descriptor):
        kind = "descriptor"
    else:
        raise TypeError("protect() takes an aioble Characteristic or Descriptor, not %s" % type(attr).__name__)
    if getattr(attr, "_value_handle", None) is not None:
        raise RuntimeError("call protect() before aioble.register_services(): the stack fixed the "
                           "permissions at registration")
    return kind


# --- auto-secure (PeerManager.auto_secure): aioble's client reads and writes ------------
_auto = None  # the PeerManager whose policy is on, or None
_SEC_ERRORS = (0x105, 0x10C, 0x10F)  # ATT 0x05/0x0C/0x0F as NimBLE reports them (0x100 + code)


def auto_secure(pm):
    """Route aioble's client read()/write() (characteristics, descriptors and so
    subscribe()) through a retry that secures the link on an ATT security error, for
    `pm` (None: off). Wraps aioble's methods once; off, they behave as aioble's own."""
    global _auto
    from aioble.client import BaseClientCharacteristic as B

    if pm is not None and not hasattr(B, "_pm_read"):
        B._pm_read, B._pm_write = B.read, B.write

        async def read(self, timeout_ms=1000):
            return await _retry(self, B._pm_read, (timeout_ms,))

        async def write(self, data, response=None, timeout_ms=1000):
            return await _retry(self, B._pm_write, (data, response, timeout_ms))

        B.read, B.write = read, write
    _auto = pm


async def _retry(attr, op, args):
    """op once; on Insufficient Authentication/Encryption/Key Size secure the link
    (re-encrypt or pair per the PM's parameters; SecurityError if that fails) and do op
    once more, whatever it gives."""
    try:
        return await op(attr, *args)
    except aioble.GattError as e:
        pm = _auto
        if pm is None or e._status not in _SEC_ERRORS:
            raise
    await pm.secure(attr._connection())
    return await op(attr, *args)


def conn_handle(conn):
    """The connection handle of an aioble DeviceConnection (None once it closed)."""
    from aioble.device import DeviceConnection

    if not isinstance(conn, DeviceConnection):
        raise TypeError("conn must be an aioble DeviceConnection or a connection handle (int), not %s"
                        % type(conn).__name__)
    return conn._conn_handle


def match_pending_connect(idm, peer_id, addr_type, addr):
    """Called (before aioble sees it) for a connect IRQ of a bonded peer. When the app
    connected to the peer's RPA, the stack reports its identity address instead and
    aioble would never match it; point an alias of that identity at the same pending
    connection so aioble's connect() completes."""
    from aioble import central
    from aioble.device import Device

    pending = central._connecting
    forget_aliases()
    for d in list(pending):
        if d.addr_type == addr_type and d.addr == addr:
            return  # aioble matches it itself
    for d in list(pending):
        if d._connection is not None and d.addr_type == 1 and idm.resolve(1, d.addr) == peer_id:
            alias = Device(addr_type, bytes(addr))
            alias._connection = d._connection
            alias._pm_alias = True
            pending.add(alias)
            return


def forget_aliases():
    """Remove the aliases match_pending_connect() left in aioble's pending set."""
    from aioble import central

    for d in [d for d in central._connecting if getattr(d, "_pm_alias", False)]:
        central._connecting.discard(d)


# --- the remote database cache (gattc.py): discovery and aioble's client objects ---------
# Uses aioble's client internals: ClientDiscover's per-connection `_discover` slot, the
# handles of ClientService/ClientCharacteristic (`_start_handle`, `_end_handle`,
# `_value_handle`) and their constructors (aioble/client.py, 0.6.x).

def is_uuid(u):
    import bluetooth

    return isinstance(u, bluetooth.UUID)


async def discover(conn, timeout_ms, char_ends):
    """The peer's database by aioble's own discovery: all primary services, their
    characteristics, and the descriptors of each characteristic that has room for
    any. asyncio.TimeoutError / aioble.DeviceDisconnectedError as aioble raises them."""
    db = []
    try:
        with conn.timeout(timeout_ms):
            svcs = []
            async for s in conn.services(None, timeout_ms):
                svcs.append(s)
            # aioble yields what arrived together last first (its queue pops from the end)
            svcs.sort(key=lambda s: s._start_handle)
            for s in svcs:
                objs = []
                async for ch in s.characteristics(None, timeout_ms):
                    objs.append(ch)
                objs.sort(key=lambda ch: ch._value_handle)
                raw = [(ch._value_handle, ch.properties, bytes(ch.uuid)) for ch in objs]
                chars = []
                for ch, (value, end, props, u) in zip(objs, char_ends(s._end_handle, raw)):
                    dscs = []
                    if end > value:
                        ch._end_handle = end  # aioble guesses value + 2 when unsure
                        async for d in ch.descriptors(timeout_ms):
                            dscs.append((d._value_handle, bytes(d.uuid)))
                        dscs.sort()
                    chars.append((value, end, props, u, dscs))
                db.append((s._start_handle, s._end_handle, bytes(s.uuid), chars))
    finally:
        conn._discover = None  # a discovery cut short must not block the next one
    return db


class _List:
    """`async for x in` a list, filtered by UUID: what aioble's discovery iterators
    give, without discovery."""

    def __init__(self, items, uuid=None):
        self._items = items
        self._uuid = uuid
        self._i = 0

    def __aiter__(self):
        return self

    async def __anext__(self):
        while self._i < len(self._items):
            x = self._items[self._i]
            self._i += 1
            if self._uuid is None or x.uuid == self._uuid:
                return x
        raise StopAsyncIteration


_classes = None


def _cached_classes():
    """ClientService/ClientCharacteristic subclasses that answer characteristics() and
    descriptors() from the database (made on first use: aioble.client loads then)."""
    global _classes
    if _classes is None:
        from aioble.client import ClientService, ClientCharacteristic

        class CachedService(ClientService):
            def characteristics(self, uuid=None, timeout_ms=2000):
                return _List(self._chars, uuid)

        class CachedCharacteristic(ClientCharacteristic):
            def descriptors(self, timeout_ms=2000):
                return _List(self._dscs)

        _classes = CachedService, CachedCharacteristic
    return _classes


def build(conn, db):
    """aioble objects for a database: services, their characteristics, descriptors."""
    import bluetooth
    from aioble.client import ClientDescriptor

    S, C = _cached_classes()
    out = []
    for start, end, u, chars in db:
        s = S(conn, start, end, bluetooth.UUID(u))
        s._chars = []
        for value, cend, props, cu, dscs in chars:
            ch = C(s, cend, value, props, bluetooth.UUID(cu))
            ch._dscs = [ClientDescriptor(ch, h, bluetooth.UUID(du)) for h, du in dscs]
            s._chars.append(ch)
        out.append(s)
    return out


def find_characteristic(services, value_handle):
    """The built characteristic with this value handle, or None."""
    for s in services:
        for ch in s._chars:
            if ch._value_handle == value_handle:
                return ch
    return None
