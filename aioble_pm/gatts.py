"""GATT cache manager, server side: the CCCDs of bonded peers and Service Changed.

MicroPython's NimBLE binding keeps no CCCD; the optional firmware module _aioble_pm_cccd
(native/aioble_pm_cccd, README "CCCD persistence") routes NimBLE's CCCD store calls here
as secret type 3 (layout in that module's source and docs/ZMS.md). Each bonded peer's
CCCDs are one sealed record, data ID 8 (Nordic's GATT_LOCAL): entries of
u16 chr_val_handle, u16 flags (1 notify, 2 indicate), u8 value_changed, ascending by
handle. NimBLE reads them back when the bond is restored (ble_gatts_bonding_restored),
so a bonded client's subscriptions survive disconnections and reboots.

The registered database (pm.register_services, or aioble.register_services after
attach) is kept as a table of (value handle, CRC-32 of service UUID, UUID, flags); when
it differs at start-up, CCCDs whose handle means something else are dropped and Service
Changed is armed for every subscribed bonded peer (NimBLE sends it when they reconnect).
Without the module none of this is loaded.
"""
from micropython import const

from .peerrec import DATA_GATT_LOCAL, SYS_GATT_DB, record_id, seal, unseal
from .zms_fmt import data_crc
from .events import ERROR_UNEXPECTED, LOCAL_DB_CHANGED, SERVICE_CHANGED_CONFIRMED, STORAGE_FULL

_KEY = const(9)  # peer_addr (7) || chr_val_handle (u16 LE)
_VALUE = const(3)  # flags (u16 LE) || value_changed (u8)
_E = const(5)  # a stored entry: chr_val_handle, flags, value_changed
MAX_CCCDS = const(48)  # per peer: a 244-byte record
_T = const(6)  # a table row: value handle (u16), tag (u32)
_ANY = bytes(7)  # BLE_ADDR_ANY: every peer
_NONE = b""


def table(defs, handles):
    """The database as registered (gatts_register_services' argument and result): one row
    per characteristic and descriptor, its value handle and a CRC-32 of what it is."""
    rows = bytearray()
    for svc, hs in zip(defs, handles):
        su = bytes(svc[0])
        i = 0
        for ch in svc[1]:
            for uuid, flags in ((ch[0], ch[1]),) + tuple((d[0], d[1]) for d in (ch[2] if len(ch) > 2 else ())):
                tag = data_crc(su + bytes(uuid) + bytes((flags & 0xFF, (flags >> 8) & 0xFF)))
                h = hs[i]
                rows += bytes((h & 0xFF, h >> 8, tag & 0xFF, (tag >> 8) & 0xFF, (tag >> 16) & 0xFF, tag >> 24))
                i += 1
    return rows


def _rows(t):
    return {t[o] | t[o + 1] << 8: bytes(t[o + 2 : o + _T]) for o in range(0, len(t) - _T + 1, _T)}


class GattServer:
    """NimBLE's CCCD store (sec type 3) over the peer database, and Service Changed."""

    def __init__(self, mod, db, idm, sm, links, emit):
        self._mod = mod
        self._db = db
        self._idm = idm
        self._sm = sm
        self._links = links
        self._emit = emit
        self.sc_handle = 0  # value handle of Service Changed (known once services are registered)
        self._held = []  # [link, handle, flags, changed]: CCCDs of a bond whose keys are not stored yet
        self._answer = bytearray(_KEY + _VALUE)
        self._cur = None  # where the last get() answer was: (addr, handle, next index, pids, pos, chr handle)

    def install(self):
        """Route NimBLE's CCCD calls here; needed after every stack start."""
        try:
            self._mod.install()
        except OSError as e:
            self._emit(ERROR_UNEXPECTED, error=e)

    # --- one peer's record -----------------------------------------------------------

    def entries(self, peer_id):
        """[(chr_val_handle, flags, value_changed)] stored for the peer ([] if none; a
        damaged record counts as none and is reported)."""
        try:
            rec = self._db.store.read(record_id(peer_id, DATA_GATT_LOCAL))
        except OSError as e:
            rec, err = b"\x00", e
        else:
            err = None
        if rec is None:
            return []
        v = unseal(rec)
        if v is None or len(v) % _E:
            # the bond is intact; its subscriptions are not: the client writes them again
            self._emit(ERROR_UNEXPECTED, peer_id=peer_id, error=err or ValueError("CCCD record damaged"))
            try:
                self._db.store.delete(record_id(peer_id, DATA_GATT_LOCAL))
            except OSError:
                pass
            return []
        return [(v[o] | v[o + 1] << 8, v[o + 2] | v[o + 3] << 8, v[o + 4] & 1) for o in range(0, len(v), _E)]

    def _put(self, peer_id, entries, same_handles=False):
        """Store the peer's entries (ZMS writes nothing when the value is the same);
        an entry added or removed ends get()'s iteration cursor."""
        if not same_handles:
            self._cur = None
        rid = record_id(peer_id, DATA_GATT_LOCAL)
        if not entries:
            self._db.store.delete(rid)
            return
        out = bytearray(_E * len(entries))
        o = 0
        for h, f, c in sorted(entries):
            out[o : o + _E] = bytes((h & 0xFF, h >> 8, f & 0xFF, f >> 8, c))
            o += _E
        self._db.store.write(rid, seal(out))

    # --- NimBLE's store calls (sec type 3) -------------------------------------------

    def get(self, index, key):
        """_IRQ_GET_SECRET(3, index, key): key || value of the index-th stored CCCD that
        matches key's peer (all-zero: any) and handle (0: any), b"" if none."""
        if key is None or len(key) != _KEY:
            return _NONE
        addr = bytes(key[0:7])
        handle = key[7] | key[8] << 8
        if addr == _ANY:
            pids = self._db.ids()
        else:
            pid = self._idm.find_key(addr)
            if pid is None or self._sm.hidden(pid):
                return _NONE
            pids = [pid]
        # NimBLE asks for index 0, 1, 2, ... in turn, marking entries changed in between:
        # resume after the previous answer (one record read per call) rather than count
        # from the first peer again (every peer's record per call: O(n^2) for n entries)
        c = self._cur
        if c is not None and c[0] == addr and c[1] == handle and c[2] == index and c[3] == pids:
            p, after, skip = c[4], c[5], 0
        else:
            p, after, skip = 0, -1, index
        self._cur = None
        while p < len(pids):
            pid = pids[p]
            for h, f, ch in self.entries(pid):  # (sorted by handle)
                if h <= after or (handle and h != handle):
                    continue
                if skip:
                    skip -= 1
                    continue
                self._cur = (addr, handle, index + 1, pids, p, h)
                a = self._answer
                a[0:7] = addr if addr != _ANY else self._db.key(pid)
                a[7:] = bytes((h & 0xFF, h >> 8, f & 0xFF, f >> 8, ch))
                return a
            p += 1
            after = -1
        return _NONE

    def set(self, key, value):
        """_IRQ_SET_SECRET(3, key, value or None): True if stored or deleted. NimBLE turns
        a False for a client's CCCD write into an ATT error for the client."""
        if len(key) != _KEY or (value is not None and len(value) != _VALUE):
            return False
        addr = bytes(key[0:7])
        handle = key[7] | key[8] << 8
        pid = self._idm.find_key(addr)
        if value is None:
            if handle == 0:  # ble_store_util_delete_peer: delete until "not found"
                if pid is None or not self.entries(pid):
                    return False
                self._put(pid, ())
                return True
            if pid is not None:
                self._put(pid, [e for e in self.entries(pid) if e[0] != handle])
            return True  # (gone either way: a False would fail the client's write)
        flags, changed = value[0] | value[1] << 8, value[2] & 1
        if pid is None:
            # upstream NimBLE stores the subscriptions of a new bond before its keys
            # (ble_gatts_bonding_established): hold them for the link's bond
            links = self._links.matching(addr)
            if links:
                self._held.append((links[0], handle, flags, changed))
            return True  # a peer the PM does not keep (never bonded): not stored
        return self._store(pid, handle, flags, changed)

    def _store(self, pid, handle, flags, changed):
        old = self.entries(pid)
        entries = [e for e in old if e[0] != handle]
        if len(entries) >= MAX_CCCDS:
            self._emit(STORAGE_FULL, peer_id=pid)
            return False
        entries.append((handle, flags, changed))
        try:
            self._put(pid, entries, len(entries) == len(old))
        except OSError as e:
            self._emit(ERROR_UNEXPECTED, peer_id=pid, error=e)
            return False
        return True

    def bond_stored(self, link, pid):
        """The keys of `link`'s new bond are stored under `pid`: store its held CCCDs."""
        held, self._held = self._held, []
        for e in held:
            if e[0] is link:
                self._store(pid, e[1], e[2], e[3])
            elif self._links.get(e[0].handle) is e[0]:
                self._held.append(e)  # another link's, still open

    # --- the database and Service Changed --------------------------------------------

    def registered(self, defs, handles):
        """The app registered `defs` and got `handles`: compare with the stored table;
        if the database changed, drop CCCDs whose handle means something else and arm
        Service Changed for the bonded peers. Returns True if it changed."""
        mod = self._mod
        self.sc_handle = mod.sc_handle()
        new = table(defs, handles)
        store = self._db.store
        try:
            rec = store.read(SYS_GATT_DB)
        except OSError:
            rec = b"\x00"  # damaged: count it as a change
        old = unseal(rec) if rec is not None else None
        changed = rec is not None and old != new
        pending = False
        try:
            if changed:
                keep = _rows(new)
                was = _rows(old or b"")
                for pid in self._db.ids():
                    es = self.entries(pid)
                    ok = [e for e in es if e[0] == self.sc_handle or (e[0] in keep and was.get(e[0]) == keep[e[0]])]
                    if len(ok) != len(es):
                        self._put(pid, ok)
            else:
                pending = any(e[0] == self.sc_handle and e[2] for pid in self._db.ids() for e in self.entries(pid))
            if changed or pending:
                # NimBLE marks each stored Service Changed CCCD value_changed (through
                # get/set above) and indicates when the peer is back; the range lives in
                # RAM, so a pending indication is re-armed at every start-up
                mod.changed(1, 0xFFFF)
            store.write(SYS_GATT_DB, seal(new))  # last: a power cut before it re-arms next boot
        except OSError as e:
            self._emit(ERROR_UNEXPECTED, error=e)
        if changed:
            self._emit(LOCAL_DB_CHANGED)
        return changed

    def local_db_changed(self, start, end):
        """pm.local_db_changed(): Service Changed for start..end to every subscribed
        peer, now if connected, else when it reconnects (bonded)."""
        if type(start) is not int or type(end) is not int or not 1 <= start <= end <= 0xFFFF:
            raise ValueError("need ints 1 <= start <= end <= 0xFFFF, got %r, %r" % (start, end))
        self._mod.changed(start, end)
        self._emit(LOCAL_DB_CHANGED)

    def indicate_done(self, handle, value_handle, status):
        """_IRQ_GATTS_INDICATE_DONE: a confirmed Service Changed is reported."""
        if value_handle == self.sc_handle and status == 0 and self.sc_handle:
            link = self._links.get(handle)
            self._emit(SERVICE_CHANGED_CONFIRMED, conn=handle, peer_id=link and link.peer_id)
