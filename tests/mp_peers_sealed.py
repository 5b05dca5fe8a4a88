# The Peer Manager's small records (rank, app data) are never trusted on the ZMS ATE's
# 8-bit CRC alone: an ATE whose inline value changed but whose crc8 still matches (what
# 1 torn ATE in 256 looks like) must not yield a wrong rank or wrong app data.
from mptest import eq, raises
from aioble_pm import peers, peerrec
from aioble_pm.zms import ZMS, CorruptError
from aioble_pm.flash import RamFlash
import zms_ref

KEY = b"\x00\x01\x02\x03\x04\x05\x06"
SECRET = bytes(range(80))


def _db():
    f = RamFlash(4 * 1024, sector_size=1024)
    db = peers.PeerDB(ZMS(f))
    db.write_secret(0, 2, KEY, SECRET)  # SEC_PEER
    return f, db


def _forge(f, rid):
    """Change byte 3 of the newest inline value of record rid and fix its crc8."""
    img = f.image()
    for base in range(0, f.size, 16):  # newest = lowest address in the open sector
        a = img[base : base + 16]
        if a[4] | a[5] << 8 | a[6] << 16 | a[7] << 24 == rid and 0 < (a[2] | a[3] << 8) <= 8:
            b = bytearray(a)
            b[11] ^= 0x99
            b[0] = zms_ref._crc8_ref(b, 1, 16)
            f.poke(base, b)
            return
    raise AssertionError("no inline ATE for %#x" % rid)


def test_rank_with_forged_inline_ate_is_not_trusted():
    f, db = _db()
    db.rank_highest(0)
    eq(db.rank(0), 1)
    _forge(f, peers.record_id(0, peerrec.DATA_RANK))
    db2 = peers.PeerDB(ZMS(f))
    eq(db2.ids(), [0])
    eq(db2.rank(0), 0, "a rank that fails its seal counts as least recently used")


def test_app_data_with_forged_inline_ate_is_refused():
    f, db = _db()
    db.set_app_data(0, b"abcd")
    eq(db.app_data(0), b"abcd")
    rid = peers.record_id(0, peers.DATA_APP)
    eq(len(ZMS(f).read(rid)), 8, "sealed: value + 4-byte CRC-32, still inline")
    _forge(f, rid)
    db2 = peers.PeerDB(ZMS(f))
    with raises(CorruptError, "app data of peer 0"):
        db2.app_data(0)
    db2.set_app_data(0, b"healed")
    eq(peers.PeerDB(ZMS(f)).app_data(0), b"healed")


def test_seal_round_trip_and_sizes():
    for v in (b"\x01", b"abcd", bytes(64)):
        eq(peers.unseal(peers.seal(v)), v)
    eq(peers.unseal(None), None)
    eq(peers.unseal(b"\x01\x02"), None)
    s = bytearray(peers.seal(b"abcd"))
    s[0] ^= 1
    eq(peers.unseal(s), None)


def test_store_of_schema_1_is_sealed_at_load():
    # 0.1.0 (schema 1, a 1-byte schema record) kept rank and app data unsealed: they must
    # read back as they were, not as damaged
    f = RamFlash(4 * 1024, sector_size=1024)
    store = ZMS(f)
    store.write(peers.record_id(0, 7), KEY + SECRET)  # PEER_SEC: key || value
    store.write(peers.record_id(0, peerrec.DATA_RANK), (5).to_bytes(4, "little"))
    store.write(peers.record_id(0, peers.DATA_APP), b"owner=ann")
    store.write(peerrec.SYS_SCHEMA, bytes((1,)))
    db = peers.PeerDB(ZMS(f))
    eq(db.ids(), [0])
    eq(db.rank(0), 5)
    eq(db.app_data(0), b"owner=ann")
    eq(peers.unseal(db.store.read(peerrec.SYS_SCHEMA)), bytes((peerrec.SCHEMA,)))
    again = peers.PeerDB(ZMS(f))  # sealed once, not twice (also after a cut halfway)
    eq((again.rank(0), again.app_data(0)), (5, b"owner=ann"))
