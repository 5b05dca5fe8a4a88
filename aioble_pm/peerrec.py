"""Peer records: the Peer Manager's data IDs, record IDs `(peer_id << 16) | data_id`
(FACTS §1.10), sealing, opening the store and upgrading an old layout.

The NimBLE secrets of a peer are stored as `key (7 bytes) || value`, so a record names
its peer even when the value has a layout nimble.py does not know.

No value is trusted on the ZMS ATE's 8-bit CRC alone: values of <= 8 bytes live inside
their ATE, where 1 torn ATE in 256 passes that CRC. Rank, app data and flag records are
therefore sealed: `value || CRC-32(value)` (4 bytes LE, see seal()); a record whose
seal fails counts as damaged. Secrets and our IRK are longer than 8 bytes, so ZMS
stores them out of line under its own CRC-32. To other ZMS readers a sealed record is
plain bytes.
"""
from micropython import const

from .zms_fmt import data_crc

DATA_APP = const(4)  # PM_PEER_DATA_ID_APPLICATION: the app's bytes
DATA_GATT_REMOTE = const(5)  # PM_PEER_DATA_ID_GATT_REMOTE: the remote database cache (gattc.py)
DATA_RANK = const(6)  # PM_PEER_DATA_ID_PEER_RANK: u32 LE, higher = used more recently
DATA_PEER_SEC = const(7)  # PM_PEER_DATA_ID_BONDING: NimBLE PEER_SEC (peer's keys, identity)
DATA_OUR_SEC = const(16)  # ours: NimBLE OUR_SEC (the keys we gave the peer)
DATA_GATT_LOCAL = const(8)  # PM_PEER_DATA_ID_GATT_LOCAL: the peer's CCCDs (gatts.py)
DATA_FLAGS = const(17)  # ours: sealed u8 of peer flags, bit 0 pinned (absent: none set)
FLAG_PINNED = const(0x01)
# every data ID a peer may have: deleting a peer deletes each (secrets first)
PEER_DATA_IDS = (DATA_PEER_SEC, DATA_OUR_SEC, DATA_RANK, DATA_APP, DATA_FLAGS, DATA_GATT_LOCAL, DATA_GATT_REMOTE)

# System records live under a reserved peer ID, above any real one.
SYSTEM = const(0xFFF0)
SYS_OUR_IRK = const(0xFFF00001)  # our IRK (MicroPython's secret type 10, key b"irk")
SYS_SCHEMA = const(0xFFF00002)  # u8 schema version of this layout
SYS_GATT_DB = const(0xFFF00003)  # the registered GATT database's table (gatts.py)
SCHEMA = const(2)  # 1 (0.1.0): rank and app data unsealed, a 1-byte schema record


def u32(buf, o):
    return buf[o] | buf[o + 1] << 8 | buf[o + 2] << 16 | buf[o + 3] << 24


def put_u32(buf, o, v):
    for i in range(4):
        buf[o + i] = (v >> (8 * i)) & 0xFF


def record_id(peer_id, data_id):
    return (peer_id << 16) | data_id


def open_store(flash):
    """Mount the ZMS store on `flash`: (store, None). When no sector of it is usable
    (every sector closed, or only another ZMS format or version: zms.CorruptError
    "no usable sector"), returns (an empty store in RAM, that error) instead and
    leaves the flash as it is, so the board still runs (bonds last until reset) and
    the damaged image can be read off with tools/zms_decode.py."""
    from .zms import ZMS, CorruptError

    try:
        return ZMS(flash), None
    except CorruptError as e:
        from .flash import RamFlash

        S = flash.sector_size
        return ZMS(RamFlash(2 * S, S, flash.write_block)), e


def seal(value):
    """The record for a small value: value || CRC-32(value), 4 bytes little-endian."""
    out = bytearray(len(value) + 4)
    out[0 : len(value)] = value
    put_u32(out, len(value), data_crc(value))
    return out


def unseal(record):
    """The value in a sealed record, or None if there is none or its CRC-32 fails."""
    if record is None or len(record) < 5:
        return None
    v = memoryview(record)[0 : len(record) - 4]
    return bytes(v) if data_crc(v) == u32(record, len(record) - 4) else None


def read_rank(store, peer_id):
    """The peer's rank (u32) from its sealed record; 0 if none or damaged."""
    try:
        rank = unseal(store.read(record_id(peer_id, DATA_RANK)))
    except OSError:
        rank = None
    return u32(rank, 0) if rank is not None and len(rank) == 4 else 0


def write_rank(store, peer_id, rank):
    buf = bytearray(4)
    put_u32(buf, 0, rank)
    store.write(record_id(peer_id, DATA_RANK), seal(buf))


def upgrade(store):
    """Record the schema version of this layout, sealing first the rank and app data
    records of a schema 1 store in place. A record that unseals already is skipped, so
    a power cut halfway through is finished next boot; so is a write the flash refuses
    (its OSError is returned; None when all is done)."""
    try:
        old = store.read(SYS_SCHEMA)
        if old is not None and (len(old) != 1 or old[0] != 1):
            return None  # current (sealed), or newer: left alone
        if old is not None:
            for rid in list(store.ids()):
                if rid >> 16 < SYSTEM and (rid & 0xFFFF) in (DATA_RANK, DATA_APP):
                    value = store.read(rid)
                    if value is not None and unseal(value) is None:
                        store.write(rid, seal(value))
        store.write(SYS_SCHEMA, seal(bytes((SCHEMA,))))
    except OSError as e:
        return e  # (a damaged record stays damaged; the load reports it)
    return None
