"""Bond backup and restore: `pm.export(key=...)` and `pm.restore(data, key=...)`.

An export holds every bond (both NimBLE secrets, identity inside them, rank, app data,
pins) and our own IRK, encrypted with AES-128-CTR and authenticated with AES-CMAC
(encrypt-then-MAC) under two subkeys derived from the user's 16-byte key. The format
is defined field by field in docs/EXPORT.md; tools/bond_export.py reads it on a PC.
Loaded only when export() or restore() is called.

restore() checks everything (tag, layout, peer IDs, sizes, room in flash) before it
writes anything, so a wrong key or damaged data changes nothing.
"""
from micropython import const
import os

from . import cipher, peerrec
from .peerrec import record_id, seal

MAGIC = b"PMBK"
VERSION = const(1)
_HEADER = const(16)
_TAG = const(16)
_SECRET_MAX = const(7 + 128)  # key || the longest NimBLE value the PM hands out
_LABEL = b"aioble_pm export"


def _check_key(key):
    if type(key) not in (bytes, bytearray):
        raise TypeError("key must be 16 bytes, not %s" % type(key).__name__)
    if len(key) != 16:
        raise ValueError("key must be 16 bytes, not %d" % len(key))


def subkeys(key):
    """(encryption key, MAC key): AES-CMAC(key, 0x01 || label), AES-CMAC(key, 0x02 || label)."""
    return cipher.cmac(key, b"\x01" + _LABEL), cipher.cmac(key, b"\x02" + _LABEL)


def _u16(b, o):
    return b[o] | b[o + 1] << 8


def _u32(b, o):
    return b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24


# --- export -------------------------------------------------------------------------


def _payload(db):
    out = bytearray()
    irk = db.our_irk()
    irk = b"" if irk is None else bytes(irk)
    out.append(len(irk))
    out.extend(irk)
    pids = db.ids()
    out.append(len(pids))
    for pid in pids:
        out.append(pid)
        out.append(peerrec.FLAG_PINNED if db.pinned(pid) else 0)
        r = db.rank(pid)
        out.extend(bytes((r & 0xFF, r >> 8 & 0xFF, r >> 16 & 0xFF, r >> 24 & 0xFF)))
        for data_id in (peerrec.DATA_OUR_SEC, peerrec.DATA_PEER_SEC):
            rec = db.store.read(record_id(pid, data_id))  # CorruptError names a damaged one
            rec = b"" if rec is None else rec
            out.append(len(rec))
            out.extend(rec)
        try:
            app = db.app_data(pid) or b""
        except OSError:
            app = b""  # damaged app data is lost already; the bond is still worth keeping
        out.extend(bytes((len(app) & 0xFF, len(app) >> 8)))
        out.extend(app)
    return out


def export(db, key):
    """The encrypted, authenticated export of the whole peer database (bytes)."""
    _check_key(key)
    k_enc, k_mac = subkeys(key)
    header = bytearray(_HEADER)
    header[0:4] = MAGIC
    header[4] = VERSION
    header[8:16] = os.urandom(8)  # nonce: a fresh key stream per export
    body = cipher.ctr(k_enc, bytes(header[8:16]) + bytes(8), _payload(db))
    head_body = bytes(header) + body
    return head_body + cipher.cmac(k_mac, head_body)


# --- restore ------------------------------------------------------------------------


def open_export(data, key):
    """Check and decrypt an export: the plaintext payload, or ValueError naming what is
    wrong. Nothing is written."""
    _check_key(key)
    if type(data) not in (bytes, bytearray, memoryview):
        raise TypeError("data must be bytes-like, not %s" % type(data).__name__)
    data = bytes(data)
    if len(data) < _HEADER + 2 + _TAG:
        raise ValueError("data: truncated (%d bytes, an export has at least %d)" % (len(data), _HEADER + 2 + _TAG))
    if data[0:4] != MAGIC:
        raise ValueError("data: not an aioble_pm export (no PMBK magic)")
    if data[4] != VERSION:
        raise ValueError("data: export version %d is not supported (this PM reads %d)" % (data[4], VERSION))
    k_enc, k_mac = subkeys(key)
    n = len(data) - _TAG
    if not cipher.equal(cipher.cmac(k_mac, memoryview(data)[0:n]), memoryview(data)[n:]):
        raise ValueError("data: authentication failed (wrong key, or the data was changed or truncated)")
    return cipher.ctr(k_enc, data[8:16] + bytes(8), memoryview(data)[_HEADER:n])


def parse(p, max_peers, app_data_max):
    """(our_irk or None, [(pid, flags, rank, our_rec, peer_rec, app)]) from a payload."""

    def bad(what):
        return ValueError("data: malformed export (%s)" % what)

    o = 0

    def take(k):
        nonlocal o
        if o + k > len(p):
            raise bad("ends inside a field")
        o += k
        return p[o - k : o]

    n = take(1)[0]
    if n not in (0, 16):
        raise bad("our IRK is %d bytes" % n)
    irk = take(n) if n else None
    count = take(1)[0]
    out = []
    seen = set()
    for _ in range(count):
        pid, flags = take(2)
        rank = _u32(take(4), 0)
        recs = []
        for _s in range(2):
            rec = take(take(1)[0])
            if not rec or len(rec) < 8 or len(rec) > _SECRET_MAX:
                raise bad("peer %d: a secret of %d bytes" % (pid, len(rec)))
            recs.append(rec)
        if recs[0][0:7] != recs[1][0:7]:
            raise bad("peer %d: its two secrets name different peers" % pid)
        app = take(_u16(take(2), 0))
        if pid >= max_peers:
            raise ValueError("data: peer %d does not fit max_peers=%d" % (pid, max_peers))
        if len(app) > app_data_max:
            raise ValueError("data: peer %d has %d bytes of app data, over app_data_max=%d" % (pid, len(app), app_data_max))
        key = bytes(recs[0][0:7])
        if pid in seen or key in seen:
            raise bad("peer %d twice" % pid)
        seen.add(pid)
        seen.add(key)
        out.append((pid, flags, rank, recs[0], recs[1], app))
    if o != len(p):
        raise bad("%d bytes after the last peer" % (len(p) - o))
    return irk, out


def _records(irk, bonds):
    """(record id, value) pairs in write order: per peer its rank, app data and flags,
    then OUR_SEC, then PEER_SEC (a peer is complete only with both), then our IRK."""
    out = []
    for pid, flags, rank, our, peer, app in bonds:
        out.append((record_id(pid, peerrec.DATA_RANK), seal(bytes((rank & 0xFF, rank >> 8 & 0xFF, rank >> 16 & 0xFF, rank >> 24 & 0xFF)))))
        if app:
            out.append((record_id(pid, peerrec.DATA_APP), seal(app)))
        if flags & peerrec.FLAG_PINNED:
            out.append((record_id(pid, peerrec.DATA_FLAGS), seal(bytes((peerrec.FLAG_PINNED,)))))
        out.append((record_id(pid, peerrec.DATA_OUR_SEC), bytes(our)))
        out.append((record_id(pid, peerrec.DATA_PEER_SEC), bytes(peer)))
    if irk is not None:
        out.append((peerrec.SYS_OUR_IRK, bytes(irk)))
    return out


def _check_room(store, records):
    """ValueError unless the store can hold these records once every current peer is gone."""
    fl = store._f
    wb = fl.write_block
    A = 16 if wb <= 16 else wb

    def size(n):
        return A + ((n + wb - 1) & ~(wb - 1)) if n > 8 else A

    live = 0
    kept = 0
    for rid in store.ids():
        n = store.length(rid) or 0
        live += size(n)
        if rid >> 16 >= 0xFFF0 and (rid != peerrec.SYS_OUR_IRK or not any(r == rid for r, _ in records)):
            kept += size(n)  # system records stay
    capacity = store.free_space() + live
    need = kept + sum(size(len(v)) for _, v in records)
    if need > capacity:
        raise ValueError("data: %d bytes of records do not fit the store's %d" % (need, capacity))
    for _, v in records:
        if len(v) > store.max_value_size:
            raise ValueError("data: a %d-byte record exceeds the store's max_value_size" % len(v))


def restore(db, data, key):
    """Replace every bond in db with those of an export; returns the restored peer IDs.
    All checks first (ValueError/TypeError: nothing written). The writes are ordered so
    that a power cut part-way leaves only whole peers (half bonds are dropped at the
    next start-up); re-run restore() after such a cut."""
    irk, bonds = parse(open_export(data, key), db.max_peers, db.app_data_max)
    records = _records(irk, bonds)
    _check_room(db.store, records)
    for pid in db.ids():
        db.delete(pid)
    for rid, value in records:
        db.store.write(rid, value)
    db.reload()
    return [b[0] for b in bonds]
