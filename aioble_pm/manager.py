"""PeerManager: the facade an app uses. It answers MicroPython's secret IRQs from the
peer database (so NimBLE's bonds live in ZMS records), tracks connections and their
peer IDs, runs `secure()`, answers passkey actions, enforces the security parameters
and emits Peer Manager events (FACTS §2.2).

IRQ handling follows modbluetooth_nimble.c (FACTS §3.3): GET/SET_SECRET come from inside
a stack operation and must be answered at once; the handler never raises (a failure is
reported as ERROR_UNEXPECTED and answered as "not found"/"not stored").
"""
import micropython
from micropython import const
import asyncio
import time

from . import nimble, peers, privacy, security
from .security import SecurityError

# Events (Peer Manager vocabulary)
BONDED_PEER_CONNECTED = const(1)
CONN_SEC_START = const(2)
CONN_SEC_SUCCEEDED = const(3)
CONN_SEC_FAILED = const(4)
CONN_SEC_CONFIG_REQ = const(5)
PASSKEY_DISPLAY = const(6)
PASSKEY_REQUEST = const(7)
NUMERIC_COMPARISON = const(8)
STORAGE_FULL = const(9)
PEER_DELETE_SUCCEEDED = const(10)
PEER_DELETE_FAILED = const(11)
PEERS_DELETE_SUCCEEDED = const(12)
PEER_DATA_UPDATE_SUCCEEDED = const(13)
PEER_DATA_UPDATE_FAILED = const(14)
ERROR_UNEXPECTED = const(15)
PEER_EVICTED = const(16)
CONN_REFUSED = const(17)  # a central not on the accept list was disconnected (.addr says who)

# when_full
EVICT_LRU = const(0)
REJECT = const(1)

# peer_ids(skip=...)
SKIP_NO_ID_ADDR = const(1)
SKIP_NO_IRK = const(2)

# CONN_SEC_START / SUCCEEDED .procedure
PROC_ENCRYPTION = const(0)  # re-encrypted with stored keys
PROC_BONDING = const(1)  # paired and stored a bond
PROC_PAIRING = const(2)  # paired without a bond

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)

_ACTION_INPUT = const(2)
_ACTION_DISPLAY = const(3)
_ACTION_NUMCMP = const(4)
_EALREADY = const(114)  # errno of gap_pair while a pairing runs (MP_EALREADY)

_JSON = "ble_secrets.json"
_NONE = b""  # "not found" for GET_SECRET that stops aioble's dispatch
_NAMES = (
    "", "BONDED_PEER_CONNECTED", "CONN_SEC_START", "CONN_SEC_SUCCEEDED", "CONN_SEC_FAILED",
    "CONN_SEC_CONFIG_REQ", "PASSKEY_DISPLAY", "PASSKEY_REQUEST", "NUMERIC_COMPARISON",
    "STORAGE_FULL", "PEER_DELETE_SUCCEEDED", "PEER_DELETE_FAILED", "PEERS_DELETE_SUCCEEDED",
    "PEER_DATA_UPDATE_SUCCEEDED", "PEER_DATA_UPDATE_FAILED", "ERROR_UNEXPECTED", "PEER_EVICTED",
    "CONN_REFUSED",
)


class Event:
    """What handlers registered with `PeerManager.register()` receive.

    id: one of the event constants; conn: connection handle or None; peer_id or None;
    error: a SecurityError / exception or None; passkey (PASSKEY_DISPLAY,
    NUMERIC_COMPARISON); procedure (CONN_SEC_START/SUCCEEDED); addr: (addr_type, addr)
    of the central (CONN_REFUSED).
    For CONN_SEC_CONFIG_REQ call `allow()` to let a bonded peer pair again.
    """

    def __init__(self, id, conn=None, peer_id=None, error=None, passkey=None, procedure=None, addr=None):
        self.id = id
        self.addr = addr
        self.conn = conn
        self.peer_id = peer_id
        self.error = error
        self.passkey = passkey
        self.procedure = procedure
        self.allowed = False

    def allow(self, allow=True):
        self.allowed = bool(allow)

    def __repr__(self):
        return "<Event %s conn=%s peer_id=%s%s%s>" % (
            _NAMES[self.id] if 0 < self.id < len(_NAMES) else self.id,
            self.conn, self.peer_id,
            "" if self.procedure is None else " procedure=" + ("ENCRYPTION", "BONDING", "PAIRING")[self.procedure],
            " error=%r" % (self.error,) if self.error else "",
        )


class PeerInfo:
    """What the PM knows of a bonded peer; never any key material."""

    def __init__(self, db, peer_id, connected):
        self.peer_id = peer_id
        self.addr_type, self.addr = db.identity(peer_id)
        self.irk = db.irk(peer_id) is not None  # presence only
        self.authenticated = db.authenticated(peer_id)
        self.sc = db.sc(peer_id)
        self.key_size = db.key_size(peer_id)
        self.rank = db.rank(peer_id)
        self.complete = db.complete(peer_id)
        self.parsed = db.parsed(peer_id)  # False: a secret of a NimBLE layout we do not know
        self.connected = connected

    def __repr__(self):
        return "<PeerInfo %d %s %s irk=%d auth=%d sc=%d key_size=%d rank=%d>" % (
            self.peer_id, ("public", "random")[self.addr_type & 1], _hex(self.addr),
            self.irk, self.authenticated, self.sc, self.key_size, self.rank,
        )


def _hex(addr):
    return ":".join("%02x" % b for b in addr)


class _Link:
    """State of one connection and of the security procedure running on it."""

    def __init__(self, handle, addr_type, addr, peer_id):
        self.handle = handle
        self.addr_type = addr_type
        self.addr = addr
        self.peer_id = peer_id
        self.encrypted = False
        self.authenticated = False
        self.key_size = 0
        self.waiter = None  # ThreadSafeFlag of a running secure()
        self.done = False  # the waiter's procedure ended with .result
        self.result = None  # peer_id (None: paired without bond) or SecurityError
        # for the whole link:
        self.repair = None  # None: no re-pairing asked; True/False: allowed or not
        self.hidden = None  # peer ID whose bond is hidden from the stack (denied re-pairing)
        self.refused = None  # SecurityError: we refused this link's bond; it is being dropped
        self._end()

    def _end(self):
        """Forget the state of the procedure that just ended."""
        self.busy = False  # a security procedure is running (CONN_SEC_START emitted)
        self.keys = 0  # bits (1 << sec_type) of the secrets stored by this procedure
        self.keys_read = False  # the stack read this peer's keys: a re-encryption
        self.new_peer = None  # peer ID allocated for this procedure's bond
        self.pending = False  # encrypted, the new bond's keys still due (upstream NimBLE)
        self.passkey = None  # pending action (INPUT/NUMCMP); "passkey"/"numcmp" once answered
        self.passkey_at = None  # ticks_ms when the pending passkey action was asked


def _handle(conn):
    """Connection handle of an aioble DeviceConnection (its `_conn_handle`, which aioble
    keeps private; aiohooks.py is the only other reader) or a plain int handle."""
    if type(conn) is int:
        return conn
    handle = getattr(conn, "_conn_handle", None)
    if handle is None:
        raise ValueError("conn is not connected")
    return handle


class PeerManager:
    """Peer Manager for aioble (or a raw `bluetooth.BLE`); see the README for the API."""

    def __init__(self, flash=None, max_peers=8, when_full=EVICT_LRU, app_data_max=64):
        if when_full not in (EVICT_LRU, REJECT):
            raise ValueError("when_full must be EVICT_LRU or REJECT")
        if flash is None:
            from . import flash as flash_mod

            flash = flash_mod.default()
        from .zms import ZMS

        self._store = ZMS(flash)
        self._db = peers.PeerDB(self._store, max_peers, app_data_max)
        self.dropped = self._db.dropped  # peer IDs removed at start-up (damaged, or >= max_peers)
        self.when_full = when_full
        self._params = security.SecParams()
        self._handlers = []
        self._links = {}
        self._resolver = None
        self._buf = bytearray(128)  # secret values handed to the stack
        self._ra = security.RepeatedAttempts()
        self._ble = None
        self.passkey_timeout_ms = 30000  # an unanswered PASSKEY_REQUEST/NUMERIC_COMPARISON fails secure()
        self._aioble = False
        self._accept = None  # Whitelist of the centrals allowed to stay connected
        self._wl = None  # the whitelist module, once a whitelist was made
        if self._store.read(peers.SYS_SCHEMA) is None:
            self._store.write(peers.SYS_SCHEMA, bytes((peers.SCHEMA,)))

    def __repr__(self):
        return "<PeerManager %d/%d peers>" % (self._db.count(), self._db.max_peers)

    # --- configuration ---------------------------------------------------------------

    def sec_params(self, *args, **kwargs):
        """Set the pairing parameters (see security.SecParams; ValueError names the
        broken rule). `sec_params(None)` rejects all pairing (stored bonds still
        re-encrypt). Returns the SecParams in force."""
        if args == (None,) and not kwargs:
            self._params = None
            return None
        params = security.SecParams(*args, **kwargs)
        self._params = params
        if self._ble is not None:
            self._apply(params)
        return params

    def _apply(self, params):
        try:
            self._ble.config(**params.to_config())
        except (OSError, ValueError, TypeError):
            pass  # a binding without pairing knobs (e.g. BTstack builds): enforced after the fact

    def register(self, handler):
        """Call handler(event) for every event, in registration order."""
        if not callable(handler):
            raise TypeError("handler must be callable")
        self._handlers.append(handler)

    def _emit(self, id, **kw):
        ev = Event(id, **kw)
        for h in self._handlers:
            try:
                h(ev)
            except Exception as e:  # an app bug must not break the stack's IRQ
                print("aioble_pm: event handler failed:", repr(e))
        return ev

    def disconnect_on_failure(self, event):
        """A ready-made handler: disconnect a link whose securing failed or fell below
        the security parameters (Nordic's pm_handler_disconnect_on_sec_failure)."""
        if event.id == CONN_SEC_FAILED and event.conn is not None and self._ble is not None:
            try:
                self._ble.gap_disconnect(event.conn)
            except OSError:
                pass

    def attach(self, ble=None, irq=None):
        """Take over the secret store. Call before `ble.active(True)`.

        With aioble (ble=None): the PM's IRQ handler goes first in aioble's dispatch,
        so aioble's JSON store is never read or written. Raw: `attach(ble, irq)`
        installs `ble.irq`, calling the app's `irq(event, data)` for whatever the PM
        does not answer. An existing `ble_secrets.json` is imported once and renamed.
        """
        if ble is None:
            from . import aiohooks

            ble = aiohooks.hook(self.irq, self._drop_links)
            self._aioble = True
        else:
            app = irq

            def dispatch(event, data):
                result = self.irq(event, data)
                if result is None and app is not None:
                    result = app(event, data)
                return result

            ble.irq(dispatch)
        self._ble = ble
        self.migrate()
        if self._params is not None:
            self._apply(self._params)
        return ble

    # --- migration of aioble's JSON store --------------------------------------------

    def migrate(self, path=_JSON):
        """Import aioble's `ble_secrets.json` (a list of [sec_type, base64 key,
        base64 value]) into the store, then rename it to `<path>.migrated`. A file
        that cannot be parsed is left alone. Returns the number of secrets imported."""
        import binascii
        import json
        import os

        try:
            with open(path) as f:
                entries = json.load(f)
        except OSError:
            return 0
        except ValueError as e:
            print("aioble_pm: %s not imported: %r" % (path, e))
            return 0
        if not isinstance(entries, list):
            print("aioble_pm: %s not imported: not a list" % path)
            return 0
        count = 0
        for entry in entries:
            try:
                sec_type, key, value = entry
                key = binascii.a2b_base64(key)
                value = binascii.a2b_base64(value)
            except (ValueError, TypeError) as e:
                print("aioble_pm: skipped an entry of %s: %r" % (path, e))
                continue
            if self._set_secret(sec_type, key, value, None):
                count += 1
        os.rename(path, path + ".migrated")
        return count

    # --- the IRQ handler -------------------------------------------------------------

    def irq(self, event, data):
        """Handle one MicroPython BLE IRQ; returns the answer for the secret IRQs and
        None for everything else (so aioble still sees connects, encryption, ...)."""
        try:
            if event == _IRQ_GET_SECRET:
                return self._get_secret(*data)
            if event == _IRQ_SET_SECRET:
                sec_type, key, value = data
                return self._set_secret(sec_type, bytes(key), value, self._link_for_key(key))
            if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
                self._connected(event, *data)
            elif event == _IRQ_CENTRAL_DISCONNECT or event == _IRQ_PERIPHERAL_DISCONNECT:
                self._disconnected(data[0])
            elif event == _IRQ_ENCRYPTION_UPDATE:
                self._encryption_update(*data)
            elif event == _IRQ_PASSKEY_ACTION:
                self._passkey_action(*data)
        except Exception as e:
            self._emit(ERROR_UNEXPECTED, error=e)
            if event == _IRQ_SET_SECRET:
                try:
                    self._refuse(self._link_for_key(data[1]), SecurityError(
                        SecurityError.REJECTED, "the bond could not be stored: %r" % e))
                except Exception:
                    pass  # (the flash itself is failing; nothing more to do)
                return False
        return None

    def _get_secret(self, sec_type, index, key):
        """The stored value, or _NONE ("not found" to the binding, which counts a value
        of the wrong length as missing) so that no handler after ours (aioble's own
        store, if the app loaded it) answers for a bond we deleted or hide."""
        if sec_type == nimble.SEC_OUR_IRK:
            # NimBLE asks for our IRK each time the stack starts: no link survived
            self._drop_links()
            return self._keep(self._store.read(peers.SYS_OUR_IRK) or _NONE)
        if sec_type != nimble.SEC_OUR and sec_type != nimble.SEC_PEER:
            return None  # CCCD (3) is never stored by the binding
        db = self._db
        if key is None:
            pid = db.peer_with_secret(sec_type, index)
        else:
            pid = self._find(key)
            for link in self._links.values():
                if pid is not None and link.peer_id == pid:
                    self._start(link)
                    link.keys_read = True  # re-encryption reads the stored keys
        if pid is None or self._hidden(pid):
            return _NONE
        try:
            n = db.read_secret(sec_type, pid, self._buf)
        except OSError as e:  # a damaged record: answer "not found"
            self._emit(ERROR_UNEXPECTED, peer_id=pid, error=e)
            return _NONE
        return self._keep(memoryview(self._buf)[0:n]) if n else _NONE

    def _find(self, key):
        """Peer ID for a NimBLE key: its identity, or an RPA of a bonded peer that the
        stack did not resolve (ESP32's host-based privacy resolves only the peers it
        paired with since boot) -- resolved here, for reads and deletes alike."""
        pid = self._db.find(key)
        if pid is None and len(key) == 7 and key[0] == 1 and key[6] >> 6 == 1:
            pid = self.resolve(1, nimble.key_addr(key)[1])
        return pid

    def _keep(self, answer):
        # The binding reads the answer after the handler returned (on ESP32 from
        # another task); keep it referenced until the next one.
        self._answer = answer
        return answer

    def _link_for_key(self, key):
        """The connection a secret belongs to: by identity address, else by the peer it
        resolved to, else the one link running a security procedure (its connect
        event carried an RPA; the identity came with the keys)."""
        if key is None or len(key) != 7:
            return None
        pid = self._find(key)
        busy = []
        for link in self._links.values():
            if link.addr_type == key[0] and all(link.addr[i] == key[6 - i] for i in range(6)):
                return link
            if pid is not None and link.peer_id == pid:
                return link
            if link.busy or link.waiter is not None or not link.encrypted:
                busy.append(link)
        if len(busy) > 1:  # prefer links with a procedure known to run
            busy = [l for l in busy if l.busy or l.waiter is not None or l.pending]
        return busy[0] if len(busy) == 1 else None

    def _set_secret(self, sec_type, key, value, link):
        db = self._db
        if sec_type == nimble.SEC_OUR_IRK:
            if value is None:
                self._store.delete(peers.SYS_OUR_IRK)
            else:
                self._store.write(peers.SYS_OUR_IRK, value)
            return True
        if sec_type != nimble.SEC_OUR and sec_type != nimble.SEC_PEER:
            return False
        if len(key) != 7:
            return False
        if value is None:
            return self._delete_secret(sec_type, self._find(key), link)
        pid = db.find(key)
        if link is not None:
            if link.refused is not None:
                return False  # the rest of a bond we refused
            self._start(link)
        if len(value) > len(self._buf):
            return self._refuse(link, SecurityError(SecurityError.REJECTED, "a %d-byte secret is too long" % len(value)))
        if nimble.parse_sec(value) is None:
            print("aioble_pm: secret of unknown layout (%d bytes) stored verbatim" % len(value))
        if pid is not None and link is not None and link.repair is None and not link.keys:
            # New keys for a bonded peer without the stack deleting the old bond first:
            # a re-pairing NimBLE did not recognise (it did not resolve the peer's RPA).
            link.repair = self._emit(CONN_SEC_CONFIG_REQ, conn=link.handle, peer_id=pid).allowed
            if not link.repair:
                return self._refuse(link, SecurityError(SecurityError.REJECTED, "re-pairing of a bonded peer not allowed"))
        new = pid is None
        if new:
            if link is not None and self._params is None:
                return self._refuse(link, SecurityError(SecurityError.REJECTED, "pairing is disabled (sec_params(None))"))
            pid = db.allocate()
            if pid is None:
                pid = self._make_room(link)
                if pid is None:
                    return self._refuse(link, SecurityError(
                        SecurityError.STORAGE_FULL, "all %d peer IDs in use" % db.max_peers))
        try:
            db.write_secret(pid, sec_type, key, value)
        except OSError:
            self._emit(STORAGE_FULL, conn=link and link.handle, peer_id=pid)
            if link is None and db.prune(pid):
                self._changed(pid)
            return self._refuse(link, SecurityError(SecurityError.STORAGE_FULL, "no room in flash"))
        self._changed(pid)
        self._emit(PEER_DATA_UPDATE_SUCCEEDED, conn=link and link.handle, peer_id=pid)
        if link is not None:
            if new:
                link.new_peer = pid
            link.peer_id = pid
            link.keys |= 1 << sec_type
            if link.pending and sec_type == nimble.SEC_PEER:
                self._complete(link, PROC_BONDING)
        return True

    def _refuse(self, link, err):
        """Answer "not stored" to the stack and fail the link's securing. NimBLE keeps
        the link encrypted (tests/blesim README), with keys we do not hold: such a link
        must not be trusted, so it is dropped (and a half-stored new bond with it)."""
        if link is None:
            return False
        if link.refused is None:
            link.refused = err
            new = link.new_peer
            self._fail(link, err)
            micropython.schedule(self._drop, link.handle)
            if new is not None and new in self._db:
                self._forget(new)
        return False

    def _drop(self, handle):
        try:
            self._ble.gap_disconnect(handle)
        except OSError:
            pass

    def _hidden(self, pid):
        for link in self._links.values():
            if link.hidden == pid:
                return True
        return False

    def _delete_secret(self, sec_type, pid, link):
        if pid is None or not self._db.has_secret(pid, sec_type) or self._hidden(pid):
            return False  # (NimBLE deletes until the store says "not found")
        if link is not None and link.peer_id == pid:
            # MicroPython deletes a bond only when a bonded central pairs again
            # (BLE_GAP_EVENT_REPEAT_PAIRING) and then always lets the pairing go on;
            # NimBLE re-reads PEER_SEC and asks again while it is found. So a re-pairing
            # the app does not allow leaves the bond on flash but hidden from the stack
            # while the link lasts, and the link is dropped.
            self._start(link)
            if link.repair is None:
                link.repair = self._emit(CONN_SEC_CONFIG_REQ, conn=link.handle, peer_id=pid).allowed
            if not link.repair:
                link.hidden = pid
                link.peer_id = None  # whoever this is, it is not holding our bond's keys
                self._refuse(link, SecurityError(SecurityError.REJECTED, "re-pairing of a bonded peer not allowed"))
                return True
        self._db.delete_secret(pid, sec_type)
        self._changed(pid)
        if link is None:
            self._db.prune(pid)
        return True

    def _make_room(self, link):
        """A free peer ID by evicting the lowest-ranked peer not connected now, or None
        (REJECT, or nothing evictable) after STORAGE_FULL."""
        if self.when_full == EVICT_LRU:
            busy = [l.peer_id for l in self._links.values()]
            victims = sorted((self._db.rank(p), p) for p in self._db.ids() if p not in busy)
            if victims:
                pid = victims[0][1]
                self._forget(pid)
                self._emit(PEER_EVICTED, peer_id=pid)
                return pid
        self._emit(STORAGE_FULL, conn=link and link.handle)
        return None

    def _connected(self, event, handle, addr_type, addr):
        addr = bytes(addr)
        addr_type &= 1  # 2/3: an identity the controller resolved (HCI address types)
        pid = self._db.find(nimble.addr_key(addr_type, addr))
        if pid is None and addr_type == privacy.ADDR_RANDOM:
            pid = self.resolve(addr_type, addr)  # an RPA the controller did not resolve
        if event == _IRQ_CENTRAL_CONNECT and self._accept is not None:
            if self._accept.match(addr_type, addr, True) is None:
                self._ble.gap_disconnect(handle)
                self._emit(CONN_REFUSED, conn=handle, peer_id=pid, addr=(addr_type, addr))
                return
        self._links[handle] = _Link(handle, addr_type, addr, pid)
        if pid is not None:
            if event == _IRQ_PERIPHERAL_CONNECT and self._aioble:
                from . import aiohooks

                aiohooks.match_pending_connect(self, pid, addr_type, addr)
            self._emit(BONDED_PEER_CONNECTED, conn=handle, peer_id=pid)

    def _disconnected(self, handle):
        link = self._links.pop(handle, None)
        if self._aioble:
            from . import aiohooks

            aiohooks.forget_aliases()
        if link is not None:
            self._lost(link)

    def _lost(self, link):
        """The link is gone: fail what ran on it, drop a bond it left half-stored."""
        new = link.new_peer  # (read first: ending the procedure forgets it)
        if link.refused is None and (link.busy or (link.waiter is not None and not link.done)):
            self._fail(link, SecurityError(SecurityError.DISCONNECTED, "link lost while securing"))
        for pid in (new, link.peer_id):
            if pid is None or pid not in self._db:
                continue
            if pid == new and not self._db.complete(pid):
                self._forget(pid)  # a new bond that never got both secrets
            elif self._db.prune(pid):  # a re-pairing that deleted the old keys, stored none
                self._changed(pid)

    def _drop_links(self):
        for link in list(self._links.values()):
            self._lost(link)
        self._links = {}

    def _start(self, link, procedure=None):
        if not link.busy:
            link.busy = True
            self._emit(CONN_SEC_START, conn=link.handle, peer_id=link.peer_id, procedure=procedure)

    def _encryption_update(self, handle, encrypted, authenticated, bonded, key_size):
        link = self._links.get(handle)
        if link is None or link.refused is not None:
            return  # unknown, or being dropped after we refused its bond
        self._start(link)
        link.encrypted = bool(encrypted)
        link.authenticated = bool(authenticated)
        link.key_size = key_size
        pid = link.peer_id
        if not encrypted:
            if link.passkey == "passkey":
                err = SecurityError(SecurityError.PASSKEY, "wrong passkey")
            elif link.passkey == "numcmp":
                err = SecurityError(SecurityError.NUMCMP, "the numbers did not match")
            elif link.keys_read and link.repair is None:
                err = SecurityError(SecurityError.KEY_MISSING, "the peer has no keys for our bond")
            else:
                err = SecurityError(SecurityError.REJECTED, "pairing failed")
            if err.reason != SecurityError.KEY_MISSING:
                self._ra.failed(nimble.addr_key(link.addr_type, link.addr))  # pairings only
            self._fail(link, err)
        elif link.keys & (1 << nimble.SEC_PEER):
            self._complete(link, PROC_BONDING)  # esp-nimble stores the keys first
        elif link.keys_read and link.repair is None and pid is not None:
            self._complete(link, PROC_ENCRYPTION)  # stored keys: no new secrets follow
        elif bonded:
            # A new bond: upstream NimBLE raises this before it stores the keys
            # (ble_sm_process_result), so the outcome is known once they are answered.
            link.pending = True
            if link.waiter is not None:
                link.waiter.set()  # secure() settles it if no keys follow
        else:
            self._complete(link, PROC_PAIRING)

    def _settle(self, link):
        """A pending link whose keys never came (the stack stored nothing)."""
        if link.pending and link.refused is None:
            self._complete(link, PROC_ENCRYPTION if link.peer_id is not None else PROC_PAIRING)

    def _complete(self, link, procedure):
        """The link is encrypted (and a new bond stored): check it against the security
        parameters and report."""
        link.pending = False
        pid = link.peer_id
        if procedure != PROC_ENCRYPTION and self._params is None:
            err = SecurityError(SecurityError.REJECTED, "pairing is disabled (sec_params(None))")
        elif self._params is not None:
            sc = self._db.sc(pid) if pid is not None and pid in self._db else None
            if sc is None and self._params.sc_only:
                sc = False  # the binding reports no SC flag; only a stored bond tells: fail closed
            err = self._params.shortfall(link.authenticated, link.key_size, sc)
        else:
            err = None
        if err is not None:
            if procedure == PROC_BONDING and pid is not None and pid in self._db:
                self._forget(pid)  # a bond below the security parameters is not kept
            self._fail(link, err)
            return
        self._ra.succeeded(nimble.addr_key(link.addr_type, link.addr))
        if pid is not None and pid in self._db:
            try:
                self._db.rank_highest(pid)
            except OSError:
                self._emit(STORAGE_FULL, conn=link.handle, peer_id=pid)
        self._emit(CONN_SEC_SUCCEEDED, conn=link.handle, peer_id=pid, procedure=procedure)
        self._finish(link, pid)

    def _fail(self, link, err):
        self._emit(CONN_SEC_FAILED, conn=link.handle, peer_id=link.peer_id, error=err)
        self._finish(link, err)

    def _finish(self, link, result):
        link._end()
        if link.waiter is not None and not link.done:
            link.done = True
            link.result = result
            link.waiter.set()

    def _passkey_action(self, handle, action, passkey):
        link = self._links.get(handle)
        if link is not None:
            self._start(link)
        if action == _ACTION_DISPLAY:
            passkey = security.new_passkey()
            self._ble.gap_passkey(handle, action, passkey)
            self._emit(PASSKEY_DISPLAY, conn=handle, peer_id=link and link.peer_id, passkey=passkey)
        elif action == _ACTION_INPUT or action == _ACTION_NUMCMP:
            if link is not None:
                link.passkey = action
                link.passkey_at = time.ticks_ms()
            self._emit(
                PASSKEY_REQUEST if action == _ACTION_INPUT else NUMERIC_COMPARISON,
                conn=handle, peer_id=link and link.peer_id,
                passkey=passkey if action == _ACTION_NUMCMP else None,
            )

    def passkey_reply(self, conn, passkey):
        """Answer PASSKEY_REQUEST with the 6-digit passkey the peer displays."""
        if type(passkey) is not int:
            raise TypeError("passkey must be an int, not %s" % type(passkey).__name__)
        if not 0 <= passkey <= 999999:
            raise ValueError("passkey must be 0..999999, got %d" % passkey)
        link = self._pending(conn, _ACTION_INPUT)
        link.passkey = "passkey"  # a failure from now on means this passkey was wrong
        link.passkey_at = None
        self._ble.gap_passkey(link.handle, _ACTION_INPUT, passkey)

    def numcmp_reply(self, conn, accept):
        """Answer NUMERIC_COMPARISON: True if both devices show the same number."""
        link = self._pending(conn, _ACTION_NUMCMP)
        link.passkey = "numcmp"
        link.passkey_at = None
        try:
            self._ble.gap_passkey(link.handle, _ACTION_NUMCMP, 1 if accept else 0)
        except OSError:
            if accept:
                raise  # a rejection is passed back by NimBLE as an error (BLE_HS_SM_US_ERR)

    def _pending(self, conn, action):
        link = self._links.get(_handle(conn))
        if link is None:
            raise ValueError("conn is not connected")
        if link.passkey != action:
            raise ValueError("no %s pending on this connection" % ("passkey request", "numeric comparison")[action == _ACTION_NUMCMP])
        return link

    # --- securing a link -------------------------------------------------------------

    async def secure(self, conn, timeout_ms=20000):
        """Encrypt the link with stored keys if the peer is bonded, else pair (and bond,
        per sec_params). Returns the peer ID (None for a pairing without bond); raises
        SecurityError with the reason on failure."""
        handle = _handle(conn)
        link = self._links.get(handle)
        if link is None:
            raise ValueError("conn is not connected")
        if link.refused is not None:
            raise link.refused
        if link.encrypted and not link.busy and (
            self._params is None or self._params.shortfall(link.authenticated, link.key_size) is None
        ):
            return link.peer_id
        wait = self._ra.check(nimble.addr_key(link.addr_type, link.addr))
        if wait:
            raise SecurityError(SecurityError.REPEATED_ATTEMPTS, "wait %d ms" % wait)
        if link.peer_id is None and self._params is None:
            raise SecurityError(SecurityError.REJECTED, "pairing is disabled (sec_params(None))")
        if self._params is not None:
            self._apply(self._params)
        link.waiter = asyncio.ThreadSafeFlag()
        link.done = False
        link.result = None
        self._start(link, PROC_ENCRYPTION if link.peer_id is not None else PROC_BONDING)
        try:
            self._ble.gap_pair(handle)
        except OSError as e:
            if e.errno != _EALREADY:  # EALREADY: the peer started it first; wait for it
                link.waiter = None
                raise SecurityError(SecurityError.REJECTED, "gap_pair: %r" % e)
        start = time.ticks_ms()
        try:
            while not link.done:
                if link.pending:  # woken after the stack's whole IRQ sequence: no keys came
                    self._settle(link)
                    continue
                left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
                asked = link.passkey_at
                if asked is not None:
                    left = min(left, self.passkey_timeout_ms - time.ticks_diff(time.ticks_ms(), asked))
                if left <= 0:
                    if asked is not None:
                        self._ra.failed(nimble.addr_key(link.addr_type, link.addr))
                        self._fail(link, SecurityError(
                            SecurityError.PASSKEY, "no answer to the passkey request in %d ms" % self.passkey_timeout_ms))
                        self._drop(handle)  # the only way to stop the pairing
                    else:
                        self._fail(link, SecurityError(SecurityError.TIMEOUT, "no answer in %d ms" % timeout_ms))
                    break
                try:
                    await asyncio.wait_for_ms(link.waiter.wait(), left)
                except asyncio.TimeoutError:
                    pass
        finally:
            link.waiter = None
        if isinstance(link.result, SecurityError):
            raise link.result
        return link.result

    # --- queries and maintenance -----------------------------------------------------

    def peer_id(self, conn):
        """Peer ID of a connection (aioble DeviceConnection or handle), or None."""
        link = self._links.get(_handle(conn))
        return None if link is None else link.peer_id

    def peer_ids(self, skip=0):
        """Stored peer IDs, ascending. skip: SKIP_NO_ID_ADDR keeps peers whose identity is
        public or random static; SKIP_NO_IRK keeps peers that gave an IRK."""
        if type(skip) is not int or not 0 <= skip <= SKIP_NO_ID_ADDR | SKIP_NO_IRK:
            raise ValueError("skip must be a combination of SKIP_NO_ID_ADDR and SKIP_NO_IRK")
        out = []
        for pid in self._db.ids():
            if skip & SKIP_NO_IRK and self._db.irk(pid) is None:
                continue
            if skip & SKIP_NO_ID_ADDR and not privacy.is_identity(*self._db.identity(pid)):
                continue
            out.append(pid)
        return out

    def peer(self, peer_id):
        """PeerInfo of a stored peer (ValueError if there is none)."""
        self._db.check(peer_id)
        return PeerInfo(self._db, peer_id, any(l.peer_id == peer_id for l in self._links.values()))

    def _forget(self, peer_id):
        self._db.delete(peer_id)
        self._changed(peer_id)
        for link in self._links.values():
            if link.peer_id == peer_id:
                link.peer_id = None

    def delete(self, peer_id):
        """Delete a bond and all data of the peer; the peer must pair again."""
        self._db.check(peer_id)
        try:
            self._forget(peer_id)
        except OSError as e:
            self._emit(PEER_DELETE_FAILED, peer_id=peer_id, error=e)
            raise
        self._emit(PEER_DELETE_SUCCEEDED, peer_id=peer_id)

    def delete_all(self):
        for pid in self._db.ids():
            self.delete(pid)
        self._emit(PEERS_DELETE_SUCCEEDED)

    def rank_highest(self, peer_id):
        self._db.check(peer_id)
        self._db.rank_highest(peer_id)

    def app_data(self, peer_id):
        return self._db.app_data(peer_id)

    def set_app_data(self, peer_id, data):
        try:
            self._db.set_app_data(peer_id, data)
        except OSError as e:
            self._emit(PEER_DATA_UPDATE_FAILED, peer_id=peer_id, error=e)
            raise
        self._emit(PEER_DATA_UPDATE_SUCCEEDED, peer_id=peer_id)

    def resolve(self, addr_type, addr):
        """Bonded peer ID for any address: its identity address, or an RPA made with its
        IRK; else None. The resolver (one AES object per IRK) is built on first use.
        addr_type 2/3 (an identity a controller resolved, as HCI reports it) count as 0/1."""
        if addr_type == 2 or addr_type == 3:
            addr_type -= 2
        privacy.check_addr(addr_type, addr)
        pid = self._db.find(nimble.addr_key(addr_type, addr))
        if pid is not None:
            return pid
        if addr_type != privacy.ADDR_RANDOM:
            return None
        if self._resolver is None:
            self._resolver = privacy.Resolver()
            for p in self._db.ids():
                self._sync_resolver(p)
        return self._resolver.resolve(addr_type, addr)

    def _changed(self, peer_id):
        """A peer's identity or IRK came, changed or went: update the resolver, and tell
        whitelists to rebuild."""
        if self._wl is not None:
            self._wl.changed()
        self._sync_resolver(peer_id)

    def _sync_resolver(self, peer_id):
        r = self._resolver
        if r is None:
            return
        irk = self._db.irk(peer_id) if peer_id in self._db else None
        if irk is None:
            if peer_id in r:
                r.remove(peer_id)
        else:
            r.add(peer_id, irk)

    def whitelist(self, peer_ids=None, limit=None, skip=0, device_privacy=False):
        """A Whitelist of these bonded peers (None: all of them, now and later).

        limit: refuse more peers than a controller's list holds (ValueError);
        skip: SKIP_NO_ID_ADDR / SKIP_NO_IRK as in peer_ids(); device_privacy: True, or
        a list of peer IDs, to accept those peers' identity addresses over the air."""
        from . import whitelist

        self._wl = whitelist
        if peer_ids is not None:
            if not isinstance(peer_ids, (list, tuple)):
                raise TypeError("peer_ids must be a list of peer IDs or None")
            for p in peer_ids:
                self._db.check(p)
            if len(set(peer_ids)) != len(peer_ids):
                raise ValueError("peer_ids has duplicates")
            peer_ids = list(peer_ids)
        wl = whitelist.Whitelist(self, peer_ids, skip, device_privacy)
        if limit is not None and len(wl) > limit:
            raise ValueError("%d peers, over limit=%d" % (len(wl), limit))
        return wl

    def accept(self, wl):
        """Let only centrals on this Whitelist stay connected (None: anyone). Others are
        disconnected as they connect, with a CONN_REFUSED event."""
        from .whitelist import Whitelist

        if wl is not None and not isinstance(wl, Whitelist):
            raise TypeError("wl must be a Whitelist or None")
        self._accept = wl

    def scan(self, wl, duration_ms=5000, interval_us=30000, window_us=30000, active=False, dedup=True):
        """aioble: `async for result, peer_id in pm.scan(wl): ...` -- the scan results of
        whitelisted peers only (RPAs resolved), each address once when dedup is on."""
        from . import aiohooks

        return aiohooks.Scan(wl, duration_ms, interval_us, window_us, active, dedup)

    async def connect(self, peer_id, timeout_ms=10000, secure=True):
        """aioble: find the bonded peer whatever RPA it advertises with now, connect and
        (by default) secure the link. Returns the aioble DeviceConnection; raises
        asyncio.TimeoutError if the peer is not seen in time, SecurityError if securing fails."""
        from . import aiohooks

        return await aiohooks.connect(self, peer_id, timeout_ms, secure)

    async def advertise(self, interval_us, wl=None, **kwargs):
        """aioble: advertise until a central on `wl` (default: every bonded peer) connects;
        others are refused (CONN_REFUSED) and advertising goes on. Takes aioble.advertise's
        keyword arguments; returns the DeviceConnection."""
        from . import aiohooks

        return await aiohooks.advertise(self, interval_us, self.whitelist() if wl is None else wl, kwargs)

    def show(self):
        """Print the peer table (never key material)."""
        print("id  identity                  type    irk auth sc  key  rank  conn")
        for pid in self._db.ids():
            p = self.peer(pid)
            print("%-3d %-25s %-7s %-3s %-4s %-3s %-4d %-5d %s" % (
                pid, _hex(p.addr), ("public", "random")[p.addr_type & 1], "yes" if p.irk else "-",
                "yes" if p.authenticated else "-", "yes" if p.sc else "-", p.key_size, p.rank,
                "yes" if p.connected else "-"))
        print("%d of %d peer IDs used" % (self._db.count(), self._db.max_peers))
