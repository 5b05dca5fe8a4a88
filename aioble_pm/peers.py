"""Peer database: small integer peer IDs, each peer's records in the ZMS store, and the
small in-RAM index rebuilt from the store at start-up.

The records themselves (data IDs, record IDs, sealing, opening the store, schema
upgrades) are peerrec.py's. A peer exists while it has at least one secret record; its
rank, app data, flags and remote database cache (gattc.py) are deleted with it.
RAM per peer: a 9-byte index entry and one "secret not read yet" bit; IRKs are read
from the PEER_SEC record when asked for (a resolver or whitelist keeps its own copy).
Start-up reads record IDs only; a peer's secret is read on first need, which for most
is NimBLE's first activation pass. Ranks stay on flash (read on use or eviction).
"""
import micropython
from micropython import const

from . import nimble
from .zms_fmt import corrupt
from .peerrec import (PEER_DATA_IDS, DATA_APP, DATA_PEER_SEC, DATA_OUR_SEC, DATA_FLAGS, FLAG_PINNED, SYSTEM,
                      SYS_OUR_IRK, record_id, open_store, seal, unseal, upgrade,
                      read_rank, write_rank)

MAX_PEERS = const(255)  # NimBLE iterates bonds with a u8 index (ble_store_key_sec.idx)
SECRET_MAX = const(128)  # longest secret value the Peer Manager stores (NimBLE's: 80, 88)
SECRET_RECORD = const(135)  # a buffer for read_secret: key (7 bytes) || the longest value

# Index entry (9 bytes): flags, key_size, NimBLE key (type + address LSB-first).
_ENTRY = const(9)
_FLAGS = const(0)
_KEY_SIZE = const(1)
_KEY = const(2)
_USED = const(0x01)
_HAS_OUR = const(0x02)
_HAS_PEER = const(0x04)
_HAS_IRK = const(0x08)
_AUTH = const(0x10)
_SC = const(0x20)
_UNPARSED = const(0x40)  # a secret with a layout we could not parse
_PINNED = const(0x80)  # FLAG_PINNED in its DATA_FLAGS record: never evicted

_SEC_DATA = {nimble.SEC_OUR: DATA_OUR_SEC, nimble.SEC_PEER: DATA_PEER_SEC}
# which secret the load reads first: PEER_SEC (identity and IRK), else OUR_SEC
_READ_ORDER = ((), (nimble.SEC_OUR,), (nimble.SEC_PEER,), (nimble.SEC_PEER, nimble.SEC_OUR))
_SEC_FLAG = {nimble.SEC_OUR: _HAS_OUR, nimble.SEC_PEER: _HAS_PEER}


@micropython.viper
def _find_key(index: ptr8, n: int, key: ptr8) -> int:
    """Peer ID whose index entry holds this 7-byte NimBLE key, or -1 (reference:
    tests/lib/peers_ref.py)."""
    k0 = key[0]
    k1 = key[1]
    pid = 0
    o = 0
    while pid < n:
        if index[o] & 1 and index[o + 3] == k1 and index[o + 2] == k0:
            j = 2
            while j < 7:
                if index[o + 2 + j] != key[j]:
                    break
                j += 1
            if j == 7:
                return pid
        pid += 1
        o += 9  # _ENTRY
    return -1


@micropython.viper
def _nth_with(index: ptr8, n: int, sel: int, k: int) -> int:
    """Peer ID of the k-th index entry (ascending) whose flags & (sel & 0xFF) equal
    sel >> 8, or -1 (reference: tests/lib/peers_ref.py; viper takes 4 arguments).
    NimBLE iterates its bonds with it at every activation; allocate() takes the first
    free ID with it."""
    mask = sel & 0xFF
    want = sel >> 8
    pid = 0
    o = 0
    while pid < n:
        if index[o] & mask == want:
            if k == 0:
                return pid
            k -= 1
        pid += 1
        o += 9  # _ENTRY
    return -1


class PeerDB:
    """Peers in a ZMS store. Methods take and return peer IDs (ints 0..max_peers-1)."""

    def __init__(self, store, max_peers=8, app_data_max=64):
        if type(max_peers) is not int or not 1 <= max_peers <= MAX_PEERS:
            raise ValueError("max_peers must be an int in 1..%d" % MAX_PEERS)
        if type(app_data_max) is not int or not 1 <= app_data_max <= 1024:
            raise ValueError("app_data_max must be an int in 1..1024")
        self.store = store
        self.max_peers = max_peers
        self.app_data_max = app_data_max
        self._index = bytearray(max_peers * _ENTRY)
        self._unread = bytearray((max_peers + 7) >> 3)  # peers whose secret is not read yet
        self._top = None  # (highest rank, its peer ID or None on a tie), read on first use
        self._dropped = ()  # (a tuple: none costs no RAM)
        self.load_error = None  # an OSError of a write at load (retried next boot)
        self._load()  # (first: its walk over the ids builds the store's lookup cache too)
        self.load_error = upgrade(store) or self.load_error

    # --- loading ---------------------------------------------------------------------

    @property
    def dropped(self):
        """Peer IDs found unusable and removed: at load (incomplete leftovers, beyond
        max_peers) or when first read (no readable secret)."""
        self._settle()
        return list(self._dropped)

    def _drop_at_load(self, pid):
        """Remove a peer found unusable; a flash that cannot be written leaves its
        records for the next boot (the index no longer holds the peer either way)."""
        self._dropped += (pid,)
        if pid < self.max_peers:
            self._forget(pid)
        try:
            self._delete_records(pid)
        except OSError as e:
            self.load_error = e

    def _load(self):
        """Rebuild the index from one pass over the record IDs; what each secret says
        is read on first need (_read_entry), mostly by NimBLE's activation pass."""
        store = self.store
        found = {}  # peer ID -> bit (1 << data_id) for each of its records
        for rid in store.ids():
            pid = rid >> 16
            if pid < SYSTEM:
                d = rid & 0xFFFF
                found[pid] = found.get(pid, 0) | (1 << (d if d < 31 else 31))
        for pid, data in found.items():
            has_our = data & (1 << DATA_OUR_SEC)
            has_peer = data & (1 << DATA_PEER_SEC)
            if pid >= self.max_peers or not (has_our or has_peer):
                # a peer beyond max_peers (the app lowered it), or leftovers of a peer
                # whose secrets are gone (power cut during a delete): remove its records
                self._drop_at_load(pid)
                continue
            self._index[pid * _ENTRY + _FLAGS] = _USED | (_HAS_OUR if has_our else 0) | (_HAS_PEER if has_peer else 0)
            self._unread[pid >> 3] |= 1 << (pid & 7)
            if data & (1 << DATA_FLAGS):
                try:
                    flags = unseal(store.read(record_id(pid, DATA_FLAGS)))
                except OSError:
                    flags = None  # damaged: not pinned (the bond itself is intact)
                if flags is not None and len(flags) == 1 and flags[0] & FLAG_PINNED:
                    self._index[pid * _ENTRY + _FLAGS] |= _PINNED

    def _settle(self):
        """Read every peer not read yet (most calls need what its secret says)."""
        if any(self._unread):
            buf = bytearray(SECRET_RECORD)
            for pid in range(self.max_peers):
                if self._unread[pid >> 3] & 1 << (pid & 7):
                    self._read_entry(pid, buf)

    def _read_entry(self, pid, buf):
        """Fill the peer's entry from its PEER_SEC (else OUR_SEC) read into buf, or drop
        it if none is readable: sec_type << 16 | length in buf (0: not in buf), or 0."""
        self._unread[pid >> 3] &= ~(1 << (pid & 7))
        for sec in _READ_ORDER[self._index[pid * _ENTRY] >> 1 & 3]:  # (_HAS_OUR | _HAS_PEER)
            rid = pid << 16 | _SEC_DATA[sec]  # (record_id, inlined: this runs for every bond)
            try:
                try:
                    n = self.store.read(rid, buf)
                    record = None if n is None else memoryview(buf)[0:n]
                except ValueError:  # longer than any layout we know: read it whole
                    n = 0
                    record = self.store.read(rid)
            except OSError:  # CorruptError: a damaged record; try the other secret
                continue
            if record is not None and len(record) >= 7:
                self._index_secret(pid, sec, record)
                return sec << 16 | n
        self._drop_at_load(pid)  # no readable secret: the bond is unusable
        return 0

    def reload(self):
        """Rebuild the in-RAM index from the store (after records were written below it)."""
        for buf in (self._index, self._unread):
            for i in range(len(buf)):
                buf[i] = 0
        self._dropped = ()
        self._top = None
        self._load()

    def _index_secret(self, pid, sec_type, record):
        """Note in the index what a secret record (key || value) says about its peer."""
        o = pid * _ENTRY
        idx = self._index
        idx[o + _FLAGS] |= _USED | _SEC_FLAG[sec_type]
        idx[o + _KEY : o + _KEY + 7] = record[0:7]
        peer = sec_type == nimble.SEC_PEER
        f = nimble.index_fields(record, 7)
        if f < 0:
            idx[o + _FLAGS] |= _UNPARSED
            return
        flags = idx[o + _FLAGS] & ~(_AUTH | _SC)
        if peer:
            flags = flags | _HAS_IRK if f & nimble.INDEX_IRK else flags & ~_HAS_IRK
        if f & nimble.INDEX_AUTH:
            flags |= _AUTH
        if f & nimble.INDEX_SC:
            flags |= _SC
        idx[o + _KEY_SIZE] = f & 0xFF
        idx[o + _FLAGS] = flags

    # --- queries ---------------------------------------------------------------------

    def check(self, peer_id):
        """Raise ValueError unless peer_id names a stored peer."""
        if type(peer_id) is not int:
            raise TypeError("peer_id must be an int, not %s" % type(peer_id).__name__)
        if not 0 <= peer_id < self.max_peers or not self._index[self._entry(peer_id)] & _USED:
            raise ValueError("no peer with peer_id %d" % peer_id)

    def __contains__(self, peer_id):
        return (
            type(peer_id) is int
            and 0 <= peer_id < self.max_peers
            and bool(self._index[self._entry(peer_id)] & _USED)
        )

    def _entry(self, pid):
        """Offset of the peer's index entry, its secret read first if it was not yet."""
        if self._unread[pid >> 3] & 1 << (pid & 7):
            self._read_entry(pid, bytearray(SECRET_RECORD))
        return pid * _ENTRY

    def ids(self):
        """Stored peer IDs, ascending."""
        self._settle()
        idx = self._index
        return [p for p in range(self.max_peers) if idx[p * _ENTRY] & _USED]

    def drop_half_bonds(self):
        """At start-up: remove peers with one of the two NimBLE secrets (a power cut
        between the two key writes of a first bonding would block that peer for good);
        nothing is read for it."""
        for p in range(self.max_peers):
            if self._index[p * _ENTRY] & _USED and not self.complete(p):
                self._drop_at_load(p)

    def count(self):
        return len(self.ids())

    def find(self, key):
        """Peer ID for a 7-byte NimBLE key (identity address), or None."""
        self._settle()
        pid = _find_key(self._index, self.max_peers, key)
        return None if pid < 0 else pid

    def key(self, peer_id):
        o = self._entry(peer_id) + _KEY
        return bytes(self._index[o : o + 7])

    def identity(self, peer_id):
        """(addr_type, addr MSB-first) of the peer's identity address."""
        return nimble.key_addr(self.key(peer_id))

    def has_irk(self, peer_id):
        return bool(self._index[self._entry(peer_id)] & _HAS_IRK)

    def irk(self, peer_id):
        """The peer's IRK (16 bytes MSB-first) or None (also if its record is damaged:
        the peer is then not resolvable, never resolvable by the wrong IRK)."""
        try:
            record = self.store.read(record_id(peer_id, DATA_PEER_SEC)) if self.has_irk(peer_id) else None
        except OSError:
            record = None
        info = record and nimble.parse_sec(memoryview(record)[7:])
        return info and info.irk

    def authenticated(self, peer_id):
        return bool(self._index[self._entry(peer_id)] & _AUTH)

    def sc(self, peer_id):
        return bool(self._index[self._entry(peer_id)] & _SC)

    def parsed(self, peer_id):
        """False if a secret of this peer has a layout nimble.py does not know."""
        return not self._index[self._entry(peer_id)] & _UNPARSED

    def has_secret(self, peer_id, sec_type):
        return bool(self._index[peer_id * _ENTRY] & _SEC_FLAG[sec_type])

    def complete(self, peer_id):
        """Both NimBLE secrets stored (a power cut or a full flash can leave one)."""
        return self._index[peer_id * _ENTRY] & (_HAS_OUR | _HAS_PEER) == _HAS_OUR | _HAS_PEER

    def pinned(self, peer_id):
        return bool(self._index[peer_id * _ENTRY] & _PINNED)

    def pin(self, peer_id, on):
        """Pin (never evict) or unpin a stored peer; persisted as its DATA_FLAGS record."""
        self.check(peer_id)
        if on:
            self.store.write(record_id(peer_id, DATA_FLAGS), seal(bytes((FLAG_PINNED,))))
            self._index[peer_id * _ENTRY] |= _PINNED
        else:
            self.store.delete(record_id(peer_id, DATA_FLAGS))
            self._index[peer_id * _ENTRY] &= ~_PINNED

    def key_size(self, peer_id):
        return self._index[self._entry(peer_id) + _KEY_SIZE]

    def rank(self, peer_id):
        """The peer's rank from its record (0: none or damaged, least recently used)."""
        return read_rank(self.store, peer_id)

    # --- secrets (the NimBLE store) --------------------------------------------------

    def read_secret(self, sec_type, peer_id, buf):
        """Read the peer's secret record (key || value) into buf, without allocating;
        returns the value's length (the value is buf[7:7 + n]), 0 if none. ValueError
        if buf is too small, CorruptError if the record is damaged."""
        if self._unread[peer_id >> 3] & 1 << (peer_id & 7):
            got = self._read_entry(peer_id, buf)  # (NimBLE's activation reads each peer so)
            n = got & 0xFFFF
            if n and got >> 16 == sec_type:  # the record asked for is in buf
                return n - 7 if n >= 8 else 0
        if not self._index[peer_id * _ENTRY] & _SEC_FLAG[sec_type]:
            return 0
        n = self.store.read(peer_id << 16 | _SEC_DATA[sec_type], buf)  # (record_id, inlined)
        return 0 if n is None or n < 8 else n - 7

    def peer_with_secret(self, sec_type, n):
        """The n-th peer ID (ascending) holding a secret of this type, or None."""
        flag = _SEC_FLAG[sec_type]
        pid = _nth_with(self._index, self.max_peers, flag | flag << 8, n)
        return None if pid < 0 else pid

    def allocate(self):
        """Lowest free peer ID, or None when all max_peers IDs are used."""
        pid = _nth_with(self._index, self.max_peers, _USED, 0)
        return None if pid < 0 else pid

    def write_secret(self, peer_id, sec_type, key, value):
        """Store a NimBLE secret for peer_id (a new or existing peer). OSError(ENOSPC)
        from the store when the flash is full; nothing changes then."""
        record = bytearray(7 + len(value))
        record[0:7] = key
        record[7:] = value
        new = peer_id not in self
        self.store.write(record_id(peer_id, _SEC_DATA[sec_type]), record)
        self._index_secret(peer_id, sec_type, record)
        if new:
            try:
                self.rank_highest(peer_id)
            except OSError:
                pass  # the bond is stored; a rank can wait for the next use

    def delete_secret(self, peer_id, sec_type):
        """Delete one secret of a peer. The peer stays (with its ID, rank and app data)
        even with no secret left, so that a re-pairing keeps them; `prune()` removes it."""
        self.store.delete(record_id(peer_id, _SEC_DATA[sec_type]))
        o = peer_id * _ENTRY
        self._index[o] &= ~_SEC_FLAG[sec_type]
        if sec_type == nimble.SEC_PEER:
            self._index[o] &= ~_HAS_IRK

    def prune(self, peer_id):
        """Delete the peer if it has no secret left; True if it did."""
        if peer_id in self and not self._index[peer_id * _ENTRY] & (_HAS_OUR | _HAS_PEER):
            self.delete(peer_id)
            return True
        return False

    # --- system records --------------------------------------------------------------

    def our_irk(self):
        """Our own IRK as the stack gave it (MicroPython's secret type 10), or None."""
        return self.store.read(SYS_OUR_IRK)

    def set_our_irk(self, irk):
        """Store our IRK; None deletes it."""
        if irk is None:
            self.store.delete(SYS_OUR_IRK)
        else:
            self.store.write(SYS_OUR_IRK, irk)

    # --- whole peers -----------------------------------------------------------------

    def delete(self, peer_id):
        """Delete every record of the peer (secrets first, so a power cut part-way
        leaves leftovers that the next load removes), then free its ID."""
        self.check(peer_id)
        self._delete_records(peer_id)
        self._top = None
        self._forget(peer_id)

    def _forget(self, pid):
        """Free the peer's index entry (and its unread bit)."""
        self._unread[pid >> 3] &= ~(1 << (pid & 7))
        for i in range(pid * _ENTRY, pid * _ENTRY + _ENTRY):
            self._index[i] = 0

    def _delete_records(self, peer_id):
        for data_id in PEER_DATA_IDS:
            self.store.delete(record_id(peer_id, data_id))

    def rank_highest(self, peer_id):
        """Make the peer the most recently used one (rank = highest + 1). When the u32
        ranks run out, all peers are renumbered 1..n in their current order first. The
        ranks are read from flash once, for the first call; then only the top is kept."""
        if self._top is None:
            top, holder = 0, None
            for p in self.ids():
                r = self.rank(p)
                if r > top:
                    top, holder = r, p
                elif r == top:
                    holder = None  # a tie (or all 0): nobody is highest yet
            self._top = (top, holder)
        top, holder = self._top
        if holder == peer_id:
            return
        if top >= 0xFFFFFFFF:
            ordered = sorted((self.rank(p), p) for p in self.ids() if p != peer_id)
            for i, (_, p) in enumerate(ordered):
                write_rank(self.store, p, i + 1)
            top = len(ordered)
        write_rank(self.store, peer_id, top + 1)
        self._top = (top + 1, peer_id)

    def app_data(self, peer_id):
        """The app's bytes for the peer, or None. CorruptError if the record is damaged."""
        self.check(peer_id)
        record = self.store.read(record_id(peer_id, DATA_APP))
        value = unseal(record)
        if record is not None and value is None:
            raise corrupt("app data of peer %d: CRC-32 mismatch" % peer_id)
        return value

    def set_app_data(self, peer_id, data):
        """Store up to app_data_max bytes for the peer; None or b"" deletes them."""
        self.check(peer_id)
        if data is None or (type(data) in (bytes, bytearray, memoryview) and len(data) == 0):
            self.store.delete(record_id(peer_id, DATA_APP))
            return
        if type(data) not in (bytes, bytearray, memoryview):
            raise TypeError("data must be bytes-like or None, not %s" % type(data).__name__)
        if len(data) > self.app_data_max:
            raise ValueError("data is %d bytes, over app_data_max=%d" % (len(data), self.app_data_max))
        self.store.write(record_id(peer_id, DATA_APP), seal(data))
