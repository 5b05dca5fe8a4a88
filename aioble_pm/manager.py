"""PeerManager: the facade an app uses. It wires the parts together (store adapter,
security manager, ID manager, connection state; Nordic's Peer Manager modules) under one
IRQ handler and offers the public API; the parts do the work.

The IRQ handler never raises: a failure is reported as ERROR_UNEXPECTED and a secret
IRQ is answered "not found"/"not stored" (the stack asks from inside its operations).
"""
from micropython import const

from . import nimble, peers, security
from .events import (Emitter, Event, EVICT_LRU, REJECT, ERROR_UNEXPECTED, PEER_DELETE_FAILED,
                     PEER_DELETE_SUCCEEDED)
from .links import Links
from .idman import IDManager
from .secman import SecurityManager
from .store import NimbleStore

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTS_READ_REQUEST = const(4)
_IRQ_GATTS_INDICATE_DONE = const(20)
_IRQ_GATTC_INDICATE = const(19)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)
_ATT_UNLIKELY = const(0x0E)  # a guarded read whose check failed unexpectedly is refused
_NOT_FOUND = b""  # "not found" for _IRQ_GET_SECRET (None would let aioble's own store answer)

_JSON = "ble_secrets.json"
_told = False  # "no CCCD module" was printed
_FLASH = ("read", "program", "erase", "size", "sector_size")


class PeerManager:
    """Peer Manager for aioble (or a raw `bluetooth.BLE`); see the README for the API."""

    def __init__(self, flash=None, max_peers=8, when_full=EVICT_LRU, app_data_max=64):
        if when_full not in (EVICT_LRU, REJECT):
            raise ValueError("when_full must be EVICT_LRU or REJECT")
        if type(max_peers) is not int:
            raise TypeError("max_peers must be an int, not %s" % type(max_peers).__name__)
        if flash is None:
            from . import flash as flash_mod

            flash = flash_mod.default()
        elif any(not hasattr(flash, name) for name in _FLASH):
            raise TypeError("flash must be a flash adapter (read/program/erase/size/sector_size), not %s"
                            % type(flash).__name__)
        store, self._store_error = peers.open_store(flash)
        db = self._db = peers.PeerDB(store, max_peers, app_data_max)
        self._emit = Emitter()
        self._idm = IDManager(db)
        self._links = Links(self._idm, self._emit)
        self._sm = self._links.sm = SecurityManager(db, self._links, self._idm, self._emit, when_full)
        db.drop_half_bonds()  # (a write the flash refuses is the store_error, not a crash)
        self._store = NimbleStore(db, self._idm, self._sm, self._emit)
        self._ble = None
        self._aioble = False
        self._gatts = None
        self._gattc = None  # the remote database cache (gattc.py), made on first use
        self._guards = None  # {attr handle: (level, attr)} the PM checks on reads (access.py)
        self._authorizer = None  # pm.authorize(fn)

    def __repr__(self):
        return "<PeerManager %d/%d peers>" % (self._db.count(), self._db.max_peers)

    # --- configuration ---------------------------------------------------------------

    # store_error: None, or zms.CorruptError "no usable sector" when the flash holds
    # nothing this store can use (the PM then runs on an empty store in RAM), or the
    # OSError of a start-up clean-up write the flash refused
    store_error = property(lambda self: self._store_error or self._db.load_error)
    # peer IDs removed at start-up (half-stored, >= max_peers) or when first read (no
    # readable secret)
    dropped = property(lambda self: self._db.dropped)
    when_full = property(lambda self: self._sm.when_full)
    passkey_timeout_ms = property(lambda self: self._sm.passkey_timeout_ms,
                                  lambda self, v: setattr(self._sm, "passkey_timeout_ms", v))

    def sec_params(self, *args, **kwargs):
        """Set the pairing parameters (see security.SecParams; ValueError names the
        broken rule). `sec_params(None)` rejects all pairing (stored bonds still
        re-encrypt). Returns the SecParams in force."""
        params = None if args == (None,) and not kwargs else security.SecParams(*args, **kwargs)
        self._sm.params = params
        self._sm.apply_params()
        return params

    def register(self, handler):
        """Call handler(event) for every event, in registration order."""
        if not callable(handler):
            raise TypeError("handler must be callable")
        self._emit.handlers += (handler,)
        if self.store_error is not None:  # tell every handler once that bonds are not kept
            handler(Event(ERROR_UNEXPECTED, error=self.store_error))

    def attach(self, ble=None, irq=None):
        """Take over the secret store, before `ble.active(True)`: first in aioble's IRQ
        dispatch (ble=None), or raw `attach(ble, irq)` installing `ble.irq` and passing
        what the PM does not answer to `irq(event, data)`. Imports ble_secrets.json once."""
        self._gatts_start()
        if ble is None:
            from . import aiohooks

            ble = aiohooks.hook(self.irq, self._sm.stack_restarted)
            aiohooks.watch_registration(self._registered)
            self._aioble = True
        else:
            app = irq

            def dispatch(event, data):
                result = self.irq(event, data)
                if result is None and app is not None:
                    result = app(event, data)
                return result

            ble.irq(dispatch)
        self._ble = self._sm.ble = self._links.ble = ble
        self._links.aioble = self._aioble
        self.migrate()
        self._sm.apply_params()
        return ble

    def _gatts_start(self):
        global _told
        mod = nimble.cccd_module()
        if mod is None:
            if not _told:
                print("aioble_pm: no _aioble_pm_cccd in this firmware: CCCDs of bonded peers are not kept")
                _told = True
            return
        from .gatts import GattServer

        self._gatts = self._store.gatts = GattServer(mod, self._db, self._idm, self._sm, self._links, self._emit)

    def _registered(self, defs, handles, guards=None):
        if guards is not None:
            self._guards = guards
        if self._gatts is not None:
            try:
                self._gatts.registered(defs, handles)
            except Exception as e:  # the app's registration itself succeeded
                self._emit(ERROR_UNEXPECTED, error=e)

    def migrate(self, path=_JSON):
        """Import aioble's `ble_secrets.json` once (see migrate.py); returns the number
        of secrets imported. Bonds beyond max_peers get a STORAGE_FULL event each."""
        try:
            open(path).close()
        except OSError:
            return 0  # nothing to import: the migration code is never loaded
        from . import migrate

        return migrate.run(self._store, self._emit, path)

    # --- the IRQ handler -------------------------------------------------------------

    def irq(self, event, data):
        """Handle one MicroPython BLE IRQ; returns the answer for the secret IRQs and
        None for everything else (so aioble still sees connects, encryption, ...)."""
        try:
            if event == _IRQ_GET_SECRET:
                return self._store.get(data[0], data[1], data[2])  # (no star call: it allocates)
            if event == _IRQ_SET_SECRET:
                return self._store.set(data[0], data[1], data[2])
            if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
                self._links.up(event == _IRQ_CENTRAL_CONNECT, *data)
            elif event == _IRQ_CENTRAL_DISCONNECT or event == _IRQ_PERIPHERAL_DISCONNECT:
                self._links.down(data[0])
            elif event == _IRQ_ENCRYPTION_UPDATE:
                self._sm.encryption_update(*data)
            elif event == _IRQ_PASSKEY_ACTION:
                from .pairing import passkey_action

                passkey_action(self._sm, *data)
            elif event == _IRQ_GATTS_INDICATE_DONE and self._gatts is not None:
                self._gatts.indicate_done(*data)
            elif event == _IRQ_GATTS_READ_REQUEST:
                return self._read_request(*data) if self._guards else None
            elif event == _IRQ_GATTC_INDICATE:  # Service Changed drops a cache (gattc.py)
                from .gattc import indicated

                indicated(self, data[0], data[1])
        except Exception as e:
            self._emit(ERROR_UNEXPECTED, error=e)
            if event == _IRQ_SET_SECRET:
                return self._store.set_failed(data, e)
            if event == _IRQ_GET_SECRET:
                return _NOT_FOUND  # not None: aioble's own store must not answer for our bonds
            if event == _IRQ_GATTS_READ_REQUEST and self._guards and data[1] in self._guards:
                return _ATT_UNLIKELY
        return None

    def _read_request(self, handle, attr_handle):
        guard = self._guards.get(attr_handle)
        if guard is None:
            return None
        from .access import read_request

        level, attr = guard
        link = self._links.get(handle)
        f = self._authorizer
        return read_request(link, level, lambda: f is not None and f(handle, link and link.peer_id, attr))

    # --- connections -----------------------------------------------------------------

    def _handle(self, conn):
        """Connection handle of an int or an aioble DeviceConnection (None once closed)."""
        if type(conn) is int:
            return conn
        if self._aioble:
            from . import aiohooks

            return aiohooks.conn_handle(conn)
        raise TypeError("conn must be a connection handle (int), not %s" % type(conn).__name__)

    def _link(self, conn):
        link = self._links.get(self._handle(conn))
        if link is None:
            raise ValueError("conn is not connected")
        return link

    async def secure(self, conn, timeout_ms=20000):
        """Re-encrypt with stored keys, or pair (and bond, per sec_params); returns the
        peer ID (None: paired without bond), raises SecurityError(.reason). See README."""
        from .secproc import secure

        return await secure(self._sm, lambda: self._link(conn), timeout_ms)

    def peer_id(self, conn):
        """Peer ID of a connection (aioble DeviceConnection or handle), or None."""
        handle = self._handle(conn)
        link = None if handle is None else self._links.get(handle)
        return None if link is None else link.peer_id

    def connected(self, conn):
        """True while the PM tracks this connection (a refused central never is)."""
        handle = self._handle(conn)
        return handle is not None and self._links.get(handle) is not None

    # --- the peer database -----------------------------------------------------------

    def peer_ids(self, skip=0):
        """Stored peer IDs, ascending, without those `skip` (SKIP_NO_ID_ADDR/_IRK) names."""
        return self._idm.peer_ids(skip)

    def peer(self, peer_id):
        """PeerInfo of a stored peer (ValueError if there is none)."""
        from .peerinfo import PeerInfo

        self._db.check(peer_id)
        return PeerInfo(self._db, peer_id, self._links.connected(peer_id))

    def delete(self, peer_id):
        """Delete a bond and all data of the peer; the peer must pair again."""
        self._db.check(peer_id)
        try:
            self._sm.forget(peer_id)
        except OSError as e:
            self._emit(PEER_DELETE_FAILED, peer_id=peer_id, error=e)
            raise
        self._emit(PEER_DELETE_SUCCEEDED, peer_id=peer_id)

    # --- identities ------------------------------------------------------------------

    def resolve(self, addr_type, addr):
        """Bonded peer ID for any address (identity or RPA; HCI types 2/3 too), or None."""
        return self._idm.resolve(addr_type, addr)

    def __getattr__(self, name):
        """The rest of the API, loaded on first use (more.py): capabilities(), export(),
        restore(), pin(), pinned(), pairing_window(), on_mismatch(), passkey_reply(),
        numcmp_reply(), wait_secure(), delete_all(), rank_highest(), app_data(),
        set_app_data(), whitelist(), accept(), authorize(), auto_secure(),
        register_services(), local_db_changed(), scan(), connect(), advertise(),
        services(), forget_services(), show(), disconnect_on_failure(); see the README."""
        from . import more

        if name not in more.NAMES:
            raise AttributeError(name)
        f = getattr(more, name)
        return lambda *args, **kw: f(self, *args, **kw)
