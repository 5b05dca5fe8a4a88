# MicroPython tests of aioble_pm.peers (the peer database) over a dict-backed store with
# the ZMS store's interface; the manager tests run the same code over the real ZMS store.
import os
import struct
from mptest import raises, eq
from aioble_pm import peers, peerrec, nimble
from peers_ref import _ENTRY, find_key_ref, nth_with_ref


class DictStore:
    """read/write/delete/ids like zms.ZMS; counts writes, notes reads; can be made full."""

    def __init__(self):
        self.d = {}
        self.writes = 0
        self.read_ids = []
        self.full = False

    def read(self, rid, buf=None):  # ZMS.read's contract
        self.read_ids.append(rid)
        v = self.d.get(rid)
        if v is None or buf is None:
            return None if v is None else bytes(v)
        if len(buf) < len(v):
            raise ValueError("buf too small")
        buf[0 : len(v)] = v
        return len(v)

    def write(self, rid, data):
        if self.full:
            raise OSError(28)
        self.writes += 1
        self.d[rid] = bytes(data)

    def delete(self, rid):
        self.d.pop(rid, None)

    def ids(self):
        return list(self.d)


def sec_value(addr_type, addr_lsb, irk_lsb=None, key_size=16, auth=False, sc=True, n=80):
    """An upstream 80-byte (or esp 88-byte) ble_store_value_sec blob."""
    v = bytearray(n)
    v[0] = addr_type
    v[1:7] = addr_lsb
    if n == 80:
        v[7] = key_size
        v[74] = (2 if auth else 0) | (4 if sc else 0)
    else:
        v[10] = key_size
        v[80] = (1 if auth else 0) | (2 if sc else 0)
    v[24:40] = os.urandom(16)
    v[40] = 1
    if irk_lsb:
        v[41:57] = irk_lsb
        v[57] = 1
    return bytes(v)


def key_of(i):
    return bytes([0, i, 2, 3, 4, 5, 6])


def bond(db, i, pid=None, irk=None, **kw):
    key = key_of(i)
    pid = db.allocate() if pid is None else pid
    db.write_secret(pid, nimble.SEC_OUR, key, sec_value(0, key[1:], **kw))
    db.write_secret(pid, nimble.SEC_PEER, key, sec_value(0, key[1:], irk, **kw))
    return pid


def test_ids_lowest_free_first_and_reload():
    st = DictStore()
    db = peers.PeerDB(st, max_peers=4)
    eq([bond(db, i) for i in range(4)], [0, 1, 2, 3])
    eq(db.allocate(), None)
    db.delete(1)
    eq(db.allocate(), 1)
    eq(db.ids(), [0, 2, 3])
    irk = os.urandom(16)
    eq(bond(db, 9, irk=irk, key_size=12, auth=True), 1)
    db2 = peers.PeerDB(st, max_peers=4)  # a reboot: index rebuilt from the store
    eq(db2.ids(), [0, 1, 2, 3])
    eq(db2.find(key_of(9)), 1)
    eq(db2.identity(1), (0, bytes([6, 5, 4, 3, 2, 9])))
    eq(db2.irk(1), bytes(reversed(irk)))  # MSB-first out of the LSB-first blob
    eq(db2.key_size(1), 12)
    assert db2.authenticated(1) and db2.sc(1) and db2.parsed(1)
    assert not db2.authenticated(0)
    eq(db2.irk(0), None)
    eq([db2.rank(p) for p in (0, 2, 3, 1)], [1, 3, 4, 5])


def test_secret_roundtrip_and_iteration():
    st = DictStore()
    db = peers.PeerDB(st)
    bond(db, 1)
    bond(db, 2, n=88)
    buf = bytearray(135)
    eq(db.read_secret(nimble.SEC_PEER, 1, buf), 88)
    eq(bytes(buf[7:95]), st.read(peers.record_id(1, peers.DATA_PEER_SEC))[7:])
    eq(db.peer_with_secret(nimble.SEC_PEER, 0), 0)
    eq(db.peer_with_secret(nimble.SEC_PEER, 1), 1)
    eq(db.peer_with_secret(nimble.SEC_PEER, 2), None)
    eq(sorted(st.ids()), sorted([peers.record_id(p, d) for p in (0, 1) for d in (6, 7, 16)] + [peerrec.SYS_SCHEMA]))


def test_unknown_layout_kept_verbatim():
    st = DictStore()
    db = peers.PeerDB(st)
    db.write_secret(0, nimble.SEC_PEER, key_of(3), b"\x01\x02\x03" * 11)
    buf = bytearray(135)
    eq(db.read_secret(nimble.SEC_PEER, 0, buf), 33)
    eq(bytes(buf[7:40]), b"\x01\x02\x03" * 11)
    assert not db.parsed(0)
    eq(peers.PeerDB(st).find(key_of(3)), 0)


def test_delete_secret_keeps_peer_until_pruned():
    st = DictStore()
    db = peers.PeerDB(st)
    pid = bond(db, 4, irk=os.urandom(16))
    db.set_app_data(pid, b"app")
    db.delete_secret(pid, nimble.SEC_OUR)
    db.delete_secret(pid, nimble.SEC_PEER)
    assert pid in db and db.irk(pid) is None
    eq(db.app_data(pid), b"app")  # kept for a re-pairing
    assert db.prune(pid)
    assert pid not in db
    eq(st.ids(), [peerrec.SYS_SCHEMA])  # every record of the peer is gone


def test_load_drops_leftovers_and_peers_beyond_max():
    st = DictStore()
    db = peers.PeerDB(st, max_peers=4)
    for i in range(4):
        bond(db, i)
    # leftovers of a delete cut by power loss: rank and app data without secrets
    st.write(peers.record_id(7, peerrec.DATA_RANK), b"\x01\x00\x00\x00")
    st.write(peers.record_id(9, peers.DATA_APP), b"x")
    st.write(peers.SYS_OUR_IRK, os.urandom(16))
    db2 = peers.PeerDB(st, max_peers=2)
    eq(db2.ids(), [0, 1])
    eq(sorted(db2.dropped), [2, 3, 7, 9])
    assert st.read(peers.SYS_OUR_IRK) is not None  # system records untouched
    eq(sorted(r >> 16 for r in st.ids() if r >> 16 < 0xFFF0), [0, 0, 0, 1, 1, 1])


def test_ranks_and_renumbering():
    st = DictStore()
    db = peers.PeerDB(st)
    for i in range(3):
        bond(db, i)
    eq([db.rank(p) for p in range(3)], [1, 2, 3])
    db.rank_highest(0)
    eq([db.rank(p) for p in range(3)], [4, 2, 3])
    w = st.writes
    db.rank_highest(0)  # already highest: nothing written
    eq(st.writes, w)
    # a rank at the u32 limit, as a store written over years holds it (sealed u32 LE)
    st.write(peers.record_id(2, peerrec.DATA_RANK), peers.seal(b"\xff\xff\xff\xff"))
    db = peers.PeerDB(st)
    eq([db.rank(p) for p in range(3)], [4, 2, 0xFFFFFFFF])
    db.rank_highest(1)  # u32 exhausted: renumber 1..n in order, then top + 1
    eq([db.rank(p) for p in (0, 2, 1)], [1, 2, 3])
    db2 = peers.PeerDB(st)
    eq([db2.rank(p) for p in (0, 2, 1)], [1, 2, 3], "ranks reload")


def test_start_up_reads_no_record_and_nimbles_iteration_fills_the_index():
    st = DictStore()
    db = peers.PeerDB(st)
    for i in range(4):
        bond(db, i, irk=bytes([i + 1]) * 16)
    db.rank_highest(1)

    def peer_reads():
        return sorted(r & 0xFFFF for r in st.read_ids if r >> 16 < 0xFFF0)

    st.read_ids = []
    db = peers.PeerDB(st)
    eq(peer_reads(), [], "start-up reads no record: the walk over the ids names the peers")
    # NimBLE's activation: PEER_SEC by index; each record is read once, into the
    # caller's buffer, and fills the peer's entry on the way
    buf = bytearray(peers.SECRET_RECORD)
    for i in range(4):
        pid = db.peer_with_secret(nimble.SEC_PEER, i)
        eq(db.read_secret(nimble.SEC_PEER, pid, buf), 80)
        eq(bytes(buf[0:7]), key_of(i))
    eq(db.peer_with_secret(nimble.SEC_PEER, 4), None)
    eq(peer_reads(), [peers.DATA_PEER_SEC] * 4, "the index needs PEER_SEC (identity, IRK), not the ranks")
    st.read_ids = []
    eq((db.ids(), db.key(2), db.has_irk(3), db.key_size(0)), ([0, 1, 2, 3], key_of(2), True, 16))
    eq(st.read_ids, [], "the iteration filled every entry")
    eq((db.irk(3), peer_reads()), (b"\x04" * 16, [peers.DATA_PEER_SEC]), "an IRK is read when asked for")
    # without the iteration, a query reads what it needs: one peer, or all for a list
    db = peers.PeerDB(st)
    st.read_ids = []
    eq(db.find(key_of(9)), None)
    eq(peer_reads(), [peers.DATA_PEER_SEC] * 4)
    db = peers.PeerDB(st)
    st.read_ids = []
    eq((db.irk(2), peer_reads()), (b"\x03" * 16, [peers.DATA_PEER_SEC] * 2))  # its entry, then its IRK
    db.ids()  # (now all read)
    eq(db.rank(1), 5)
    st.read_ids = []
    w = st.writes
    db.rank_highest(1)  # the first call reads every rank once, finds peer 1 on top: no write
    eq((st.writes, sorted(r >> 16 for r in st.read_ids)), (w, [0, 1, 2, 3]))
    st.read_ids = []
    db.rank_highest(2)
    db.rank_highest(3)
    eq(st.read_ids, [], "later calls keep the top in RAM")
    eq([db.rank(p) for p in range(4)], [1, 5, 6, 7])
    db.delete(3)  # the top is gone: the next call reads the ranks again
    db.rank_highest(0)
    eq([db.rank(p) for p in range(3)], [7, 5, 6])


def test_app_data_limits_and_errors():
    db = peers.PeerDB(DictStore(), app_data_max=16)
    pid = bond(db, 1)
    eq(db.app_data(pid), None)
    db.set_app_data(pid, b"0123456789abcdef")
    eq(db.app_data(pid), b"0123456789abcdef")
    with raises(ValueError, "app_data_max"):
        db.set_app_data(pid, bytes(17))
    with raises(TypeError, "data"):
        db.set_app_data(pid, "text")
    db.set_app_data(pid, b"")
    eq(db.app_data(pid), None)
    with raises(ValueError, "no peer"):
        db.app_data(5)
    with raises(TypeError, "peer_id"):
        db.app_data("0")
    with raises(ValueError, "max_peers"):
        peers.PeerDB(DictStore(), max_peers=0)
    with raises(ValueError, "app_data_max"):
        peers.PeerDB(DictStore(), app_data_max=0)


def test_full_store_changes_nothing():
    st = DictStore()
    db = peers.PeerDB(st)
    pid = bond(db, 1)
    st.full = True
    with raises(OSError):
        db.write_secret(1, nimble.SEC_PEER, key_of(2), sec_value(0, key_of(2)[1:]))
    assert 1 not in db
    eq(db.ids(), [pid])


def test_viper_helpers_match_reference():
    index = bytearray(os.urandom(_ENTRY * 40))
    for p in range(40):
        index[p * _ENTRY] |= 1 if p % 3 else 0
        index[p * _ENTRY] &= 0xFF if p % 3 else 0xFE
    keys = [bytes(index[p * _ENTRY + 2 : p * _ENTRY + 9]) for p in range(40)] + [os.urandom(7) for _ in range(50)]
    keys.append(b"\xff\xff\xff\xff\xff\xff\xff")
    for sel in (0x0202, 0x0404, 0x0001, 0x0101, 0x0306, 0x0006):  # with a flag, free IDs, ...
        for k in range(42):
            eq(peers._nth_with(index, 40, sel, k), nth_with_ref(index, 40, sel, k), (sel, k))
    full = bytearray(b"\x01" * (_ENTRY * 9))
    eq(peers._nth_with(full, 9, 0x0001, 0), -1)
    for k in keys:
        eq(peers._find_key(index, 40, k), find_key_ref(index, 40, k), k)
