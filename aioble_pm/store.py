"""NimBLE store adapter: answers MicroPython's _IRQ_GET_SECRET / _IRQ_SET_SECRET from the
peer database, so NimBLE's bonds live in ZMS records, and reports each read, store and
delete to the security manager, which decides what may be stored (data flows down:
this adapter -> nimble codec -> peer database -> ZMS).

Answers follow modbluetooth_nimble.c (FACTS §3.3): the stack asks from inside its own
operations, so everything is answered at once; "not found" is b"" (the binding counts a
value of the wrong length as missing), which also stops aioble's own store from
answering for a bond we deleted or hide.
"""
from micropython import const
from .peers import SECRET_MAX
from .security import SecurityError
from .events import ERROR_UNEXPECTED, PEER_DATA_UPDATE_SUCCEEDED

_NONE = b""
# nimble's secret types, as consts here: another module's names are looked up at run time
_SEC_OUR = const(1)
_SEC_PEER = const(2)
_SEC_CCCD = const(3)
_SEC_OUR_IRK = const(10)
_BUF = const(95)  # key (7) + NimBLE's longest layout (88); a longer secret grows it


class NimbleStore:
    def __init__(self, db, idm, sm, emit):
        self._db = db
        self._idm = idm
        self._sm = sm
        self._emit = emit
        self._buf = bytearray(_BUF)  # secret records read here; their values go to the stack
        self._answer = None
        self.gatts = None  # gatts.GattServer when the firmware routes CCCDs here (sec type 3)

    def _keep(self, answer):
        # The binding reads the answer after the handler returned (on ESP32 from
        # another task); keep it referenced until the next one.
        self._answer = answer
        return answer

    def get(self, sec_type, index, key):
        """The stored value for _IRQ_GET_SECRET, b"" if none, None for types we do not keep."""
        if sec_type == _SEC_OUR_IRK:
            # NimBLE asks for our IRK each time the stack starts: no link survived
            self._sm.stack_restarted()
            if self.gatts is not None:
                self.gatts.install()  # the binding re-installed its own store callbacks
            return self._keep(self._db.our_irk() or _NONE)
        if sec_type == _SEC_CCCD and self.gatts is not None:
            return self._keep(self.gatts.get(index, key))
        if sec_type != _SEC_OUR and sec_type != _SEC_PEER:
            return None  # (CCCDs come only through the firmware module)
        sm = self._sm
        link = None
        if key is not None:
            key = bytes(key)
            pid = self._idm.find_key(key) if len(key) == 7 else None
            link = sm.reading_link(key, pid)
            if pid is not None and sm.hidden(pid):
                pid = None
            if pid is None and link is not None:
                link.touch()  # e.g. the repeat-pairing check of a Pairing Request
                if sec_type == _SEC_OUR and link.peripheral and link.refused is None:
                    sm.doctor().local_lost(link)  # the central asks for the LTK of a bond we lack
        while True:
            if key is None:
                pid = self._nth_visible(sec_type, index)
            if pid is None:
                return _NONE
            try:
                n = self._read(sec_type, pid)
            except OSError as e:  # a damaged record: "not found", and a damaged bond
                self._emit(ERROR_UNEXPECTED, peer_id=pid, error=e)
                if link is not None and link.peer_id == pid:
                    sm.keys_read(link, False)
                return _NONE
            if n or key is not None or self._db.has_secret(pid, sec_type):
                break
            # (the peer was read for the first time and had no readable secret: it is
            # dropped and left the iteration, so the next peer takes its index)
        if link is not None and link.peer_id == pid and not (link.peripheral and sec_type == _SEC_PEER):
            # (a peripheral's stack reads the central's keys to pick an ATT error code or
            # to see a repeated pairing: neither is a re-encryption)
            sm.keys_read(link, n > 0)
        if not n:
            return _NONE
        self._answer = a = memoryview(self._buf)[7 : 7 + n]  # (_keep, inlined)
        return a

    def _read(self, sec_type, pid):
        while True:
            try:
                return self._db.read_secret(sec_type, pid, self._buf)
            except ValueError:  # longer than NimBLE's layouts: a bigger buffer from now on
                self._buf = bytearray(2 * len(self._buf))

    def _nth_visible(self, sec_type, index):
        """The index-th peer with this secret, skipping bonds hidden from the stack (a
        "not found" ends NimBLE's iteration, which would hide every peer after it)."""
        db = self._db
        if not self._sm.hiding():
            return db.peer_with_secret(sec_type, index)  # the usual case: one pass
        i = 0
        while True:
            pid = db.peer_with_secret(sec_type, i)
            if pid is None:
                return None
            if not self._sm.hidden(pid):
                if index == 0:
                    return pid
                index -= 1
            i += 1

    def set(self, sec_type, key, value):
        """_IRQ_SET_SECRET: True if stored (or deleted), False if not."""
        if sec_type == _SEC_OUR_IRK:
            self._db.set_our_irk(None if value is None else bytes(value))
            return True
        if sec_type == _SEC_CCCD and self.gatts is not None:
            return self.gatts.set(key, value)
        if sec_type != _SEC_OUR and sec_type != _SEC_PEER or len(key) != 7:
            return False
        key = bytes(key)
        sm = self._sm
        if value is None:
            return self._delete(sec_type, key)
        from . import bonding  # (a bond being stored)

        link = bonding.storing_link(sm, key, sec_type, value)
        pid = bonding.admit(sm, link, key, sec_type, value)
        if pid is None:
            return False
        if not self._write(link, pid, sec_type, key, value):
            return False
        bonding.stored(sm, link, sec_type)
        if self.gatts is not None and link is not None:
            self.gatts.bond_stored(link, pid)
        return True

    def _write(self, link, pid, sec_type, key, value):
        try:
            self._db.write_secret(pid, sec_type, key, value)
        except OSError:
            from .bonding import store_failed

            store_failed(self._sm, link, pid)
            return False
        self._idm.peer_changed(pid)
        self._emit(PEER_DATA_UPDATE_SUCCEEDED, conn=link and link.handle, peer_id=pid)
        return True

    def _delete(self, sec_type, key):
        db = self._db
        pid = self._idm.find_key(key)
        if pid is None or not db.has_secret(pid, sec_type):
            return False  # (NimBLE deletes until the store says "not found")
        link = self._sm.reading_link(key, pid)
        from .bonding import may_delete

        verdict = may_delete(self._sm, link, pid)
        if verdict == "absent":
            return False
        if verdict == "hide":
            return True
        db.delete_secret(pid, sec_type)
        self._idm.peer_changed(pid)
        if link is None:
            db.prune(pid)
        return True

    def set_failed(self, data, err):
        """_IRQ_SET_SECRET raised `err`: a bond we could not store must not stay up
        half-trusted. Returns False ("not stored")."""
        if data[0] != _SEC_OUR and data[0] != _SEC_PEER:
            return False  # a CCCD (or our IRK): no bond is at stake
        try:
            from .bonding import storing_link

            sm = self._sm
            sm.refuse(storing_link(sm, bytes(data[1]), data[0], data[2]), SecurityError(
                SecurityError.REJECTED, "the bond could not be stored: %r" % err))
        except Exception:
            pass  # (the flash itself is failing; nothing more to do)
        return False

    def import_secret(self, sec_type, key, value):
        """A secret from aioble's JSON store (migration): stored without the pairing
        policy, never evicting. None when no peer ID is free for a new peer."""
        if sec_type == _SEC_OUR_IRK:
            self._db.set_our_irk(value)
            return True
        if sec_type != _SEC_OUR and sec_type != _SEC_PEER or len(key) != 7 or len(value) > SECRET_MAX:
            return False
        db = self._db
        pid = db.find(key)
        if pid is None:
            pid = db.allocate()
            if pid is None:
                return None
        return self._write(None, pid, sec_type, key, value)
