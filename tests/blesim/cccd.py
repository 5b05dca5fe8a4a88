"""NimBLE's CCCD persistence (ble_gatts.c at the MicroPython pin 42849560) and what the
binding does with it, for the simulated device.

Stock binding: CCCD reads say "not stored", writes pretend success, deletes say
BLE_HS_ENOENT -- which ble_gatts_clt_cfg_access returns to ble_att_svr as the ATT error,
so a bonded client unsubscribing gets 0x05. With the firmware module
(native/aioble_pm_cccd; `_aioble_pm_cccd.install()` after each activation) the calls go
to the Python store as secret type 3: key = peer address (7) || handle (u16 LE), value
= flags (u16 LE) || value_changed (u8), a read answers key || value (12 bytes).

Keys use the connection's peer address with its type made an identity type
(ble_hs_misc_peer_addr_type_to_id); ble_gatts_bonding_established runs before
ble_sm_persist_keys on upstream NimBLE, so a new bond's subscriptions are keyed by the
address the peer connected with. ble_gatts_chr_updated looks for a connection with the
all-zero key address (a NimBLE slip), finds none, and so marks every stored record of the
characteristic value_changed, connected peers' too.
"""
from . import gatt, layout

SEC_CCCD = 3
_ENOENT = 5  # BLE_HS_ENOENT: also ATT "Insufficient Authentication" when it reaches the client
_ESTORE_CAP = 27  # BLE_HS_ESTORE_CAP
_ANY = bytes(7)


def key(addr, handle):
    return layout.key(addr[0] & 1, addr[1]) + bytes((handle & 0xFF, handle >> 8))


def _read(d, idx, k):
    if not d.cccd_hooked:
        return None  # stock: "not stored"
    v = d._get_secret(SEC_CCCD, idx, k)
    if v is None or len(v) != 12:
        return None
    return (layout.key_addr(v[0:7]), v[7] | v[8] << 8, v[9] | v[10] << 8, v[11] & 1)


def _write(d, addr, handle, flags, changed):
    if not d.cccd_hooked:
        return 0  # stock: pretends it stored it
    ok = d._set_secret(SEC_CCCD, key(addr, handle), bytes((flags & 0xFF, flags >> 8, changed)))
    return 0 if ok else _ESTORE_CAP


def _delete(d, k):
    if not d.cccd_hooked:
        return _ENOENT
    return 0 if d._set_secret(SEC_CCCD, k, None) else _ENOENT


def _records(d, addr, handle):
    """ble_store_read_cccd with idx 0, 1, ... until a miss, each read when the caller
    has handled the one before (NimBLE reads and writes in turn)."""
    k = _ANY if addr is None else key(addr, 0)[0:7]
    k += bytes((handle & 0xFF, handle >> 8))
    for idx in range(256):
        r = _read(d, idx, k)
        if r is None:
            return
        yield r


def has_cccd(d, handle):
    a = d._server.attr(handle + 1)
    return a is not None and a.kind == gatt.CCCD


def client_write(d, c, value_handle, bits):
    """ble_gatts_clt_cfg_access after the value is taken: persist for a bonded link.
    Returns the ATT error for the client (0: none)."""
    if not c.bonded:
        return 0
    if bits == 0:
        return _delete(d, key(c.peer_id, value_handle))
    return _write(d, c.peer_id, value_handle, bits, 0)


def bonding_established(d, c):
    """A new bond: store the subscriptions the link already has."""
    for h, bits in sorted(c.cccd.items()):
        if bits:
            _write(d, c.peer_id, h, bits, 0)


def bonding_restored(d, c):
    """Encryption restored with a bonded peer: take its stored subscriptions; send what
    changed while it was away (a notification clears value_changed at once, an
    indication when it is confirmed)."""
    for addr, h, flags, changed in _records(d, c.peer_id, 0):
        if not has_cccd(d, h):
            continue
        c.cccd[h] = flags
        if changed:
            if flags & 1:
                d._send_update(c, h, False)
                _write(d, addr, h, flags, 0)
            elif flags & 2:
                d._send_update(c, h, True)


def chr_updated(d, value_handle):
    """ble_gatts_chr_updated: notify/indicate subscribed links, then mark every stored
    record of this characteristic value_changed."""
    if not has_cccd(d, value_handle):
        return
    for c in list(d._conns.values()):
        bits = c.cccd.get(value_handle, 0)
        if bits & 1:
            d._send_update(c, value_handle, False)
        elif bits & 2:
            d._send_update(c, value_handle, True)
    for addr, h, flags, changed in _records(d, None, value_handle):
        if not changed:
            _write(d, addr, h, flags, 1)


def indicate_ack(d, c, value_handle):
    """ble_gatts_rx_indicate_ack: False for a characteristic that does not allow
    indications (NimBLE then raises no event); a bonded peer's record is rewritten with
    nothing pending."""
    a = d._server.attr(value_handle)
    if a is None or not has_cccd(d, value_handle) or not a.flags & 0x20:
        return False
    if c.bonded:
        _write(d, c.peer_id, value_handle, c.cccd.get(value_handle, 0), 0)
    return True


def delete_peer(d, addr):
    """ble_store_util_delete_peer, its CCCD part: delete until "not found"."""
    k = key(addr, 0)
    for _ in range(256):
        if _delete(d, k):
            return
    raise RuntimeError("blesim: the store answered True to 256 CCCD deletes")
