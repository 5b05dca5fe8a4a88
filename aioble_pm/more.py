"""The optional parts of PeerManager's API, loaded on first use (PeerManager.__getattr__),
so that the core's import does not grow with them: the capability probe, backup entry
points (backup.py), pins, the pairing window and the mismatch policy (policy.py), then
the calls an app makes now and then (passkey answers, app data, whitelists, the GATT
and aioble helpers). Each function takes the PeerManager first; `pm.export(key=k)`
calls `export(pm, key=k)`.

The capability probe tells things without radio traffic. MicroPython's `bluetooth`
module has the same methods on every binding, so the binding is inferred from what is
known to differ (FACTS §3.3, §3.4): ESP32 builds use NimBLE (esp-nimble, keys stored
before ENCRYPTION_UPDATE); rp2 builds with `gap_pair` are NimBLE (rp2's BTstack build has
no pairing); only NimBLE ever asks the Python secret store, so a store holding our IRK
(secret type 10) was written by NimBLE; a stored bond's blob length tells upstream (80)
from esp-nimble 1.5 (88).
"""
import os
import sys

from .events import (MISMATCH_REPORT, MISMATCH_REPAIR, CONN_SEC_FAILED, PEERS_DELETE_SUCCEEDED,
                     PEER_DATA_UPDATE_FAILED, PEER_DATA_UPDATE_SUCCEEDED)
from .nimble import cccd_module
from .peers import SECRET_RECORD

NAMES = ("capabilities", "export", "restore", "pin", "pinned", "pairing_window", "on_mismatch",
         "disconnect_on_failure", "register_services", "local_db_changed", "authorize", "auto_secure",
         "wait_secure", "passkey_reply", "numcmp_reply", "delete_all", "rank_highest", "app_data",
         "set_app_data", "whitelist", "accept", "scan", "connect", "advertise", "services",
         "forget_services", "show")


_BTSTACK_WHY = ("BTstack's binding never asks the Python secret store (bonds live in RAM, "
                "4 at most) and Pico W's build has no gap_pair: aioble_pm cannot store its bonds")


def _importable(name):
    try:
        return __import__(name) is not None
    except ImportError:
        return False


def _binding(db):
    """(binding, why, nimble_order)."""
    try:
        import bluetooth
    except ImportError:
        return "none", "no bluetooth module in this firmware", None
    pairing = hasattr(bluetooth.BLE, "gap_pair")
    plat = sys.platform
    order = None
    if db is not None:
        for pid in db.ids():
            n = db.read_secret(2, pid, bytearray(SECRET_RECORD)) if db.has_secret(pid, 2) else 0
            if n:
                order = "esp" if n == 88 else "upstream"
                break
    if plat == "esp32":
        return "nimble", "ESP32 ports use esp-nimble", "esp"
    if not pairing:
        if plat == "rp2":
            return "btstack", _BTSTACK_WHY, None
        return "unknown", "bluetooth.BLE has no gap_pair: built without pairing/bonding", None
    if plat == "rp2":
        return "nimble", "rp2 with gap_pair: only its NimBLE build has pairing", order or "upstream"
    if db is not None and db.our_irk() is not None:
        return "nimble", "the stack stored our IRK (secret type 10): only NimBLE does", order or "upstream"
    return "unknown", "NimBLE or BTstack: told once the stack has started with a PeerManager attached", order


def _code():
    """Where the package's code came from: "frozen" (the firmware's flash), "romfs" (a
    ROMFS, run in place), "mpy" or "py" (a file system: the bytecode is in RAM)."""
    f = __file__  # (every module of the package comes from the same place)
    if f.endswith(".py"):
        try:
            os.stat(f)
            return "py"
        except OSError:
            return "frozen"  # a frozen module's __file__ names no file
    kind, best = "mpy", ""
    try:
        import vfs

        for v, point in vfs.mount():  # (no argument: the mounts, MicroPython >= 1.25)
            if f.startswith(point.rstrip("/") + "/") and len(point) > len(best):
                kind, best = "romfs" if type(v).__name__ == "VfsRom" else "mpy", point
    except (ImportError, TypeError, ValueError):
        pass
    return kind


def capabilities(pm=None):
    """A dict of what can be done; with a PeerManager also its store. Keys: binding,
    binding_why, nimble_order, pairing, passkey_as_central, numcmp_as_central, cccd,
    cryptolib, platform, code; with pm: max_peers, peers, sector_size, sector_count,
    free_bytes, store_error."""
    db = None if pm is None else pm._db
    binding, why, order = _binding(db)
    try:
        import bluetooth

        pairing = hasattr(bluetooth.BLE, "gap_pair")
    except ImportError:
        pairing = False
    caps = {
        "binding": binding,
        "binding_why": why,
        "nimble_order": order,
        "pairing": pairing and binding != "btstack",
        # MicroPython's binding raises _IRQ_PASSKEY_ACTION only as peripheral
        "passkey_as_central": False,
        "numcmp_as_central": False,
        "cccd": cccd_module() is not None,  # native/aioble_pm_cccd is in this firmware
        "cryptolib": _importable("cryptolib"),
        "platform": sys.platform,
        "code": _code(),  # frozen/romfs: bytecode in flash; mpy/py: in RAM (README, Benchmarks)
    }
    if db is not None:
        store = db.store
        fl = store._f  # the store's flash (a RAM one when store_error is set)
        caps["max_peers"] = db.max_peers
        caps["peers"] = db.count()
        caps["sector_size"] = fl.sector_size
        caps["sector_count"] = fl.size // fl.sector_size
        caps["free_bytes"] = store.free_space()
        caps["store_error"] = None if pm.store_error is None else str(pm.store_error)
    return caps


def show_caps(caps):
    """Print a capabilities dict, one key a line."""
    for k in sorted(caps):
        print("%-18s %s" % (k, caps[k]))


# --- backup (backup.py, docs/EXPORT.md) ----------------------------------------------


def export(pm, key):
    """Every bond, its rank, app data and pin, and our IRK, encrypted and authenticated
    with the 16-byte `key` (bytes; see docs/EXPORT.md)."""
    from . import backup

    return backup.export(pm._db, key)


def restore(pm, data, key):
    """Replace all bonds with those of an export (before attach()/active(True), or
    restart the stack after, so NimBLE loads our IRK); returns the peer IDs. A wrong key
    or changed data raises ValueError and changes nothing."""
    from . import backup

    if pm._links.all():
        raise ValueError("restore() needs every connection closed")
    before = pm._db.ids()
    pids = backup.restore(pm._db, data, key)
    pm._sm.stack_restarted()  # no bond the stack was storing survives a restore
    for pid in set(before) | set(pids):
        pm._idm.peer_changed(pid)
    return pids


# --- pins, pairing window, mismatch policy -------------------------------------------


def pin(pm, peer_id, pinned=True):
    """Pin a bond (True: EVICT_LRU never evicts it) or unpin it (False); kept on flash."""
    if pinned is not True and pinned is not False:
        raise TypeError("pinned must be True or False, not %r" % (pinned,))
    pm._db.pin(peer_id, pinned)


def pinned(pm, peer_id):
    pm._db.check(peer_id)
    return pm._db.pinned(peer_id)


def pairing_window(pm, ms=None):
    """Open a pairing window: new bonds only for the next `ms` milliseconds; 0 closes it.
    Until the first call pairing is open (as without a window); a window does not
    survive a reboot. Bonded peers re-encrypt either way. Returns the ms left (None
    while no window was ever configured); `pairing_window()` only asks."""
    if ms is not None:
        if type(ms) is not int:
            raise TypeError("ms must be an int, not %s" % type(ms).__name__)
        if not 0 <= ms <= 0x1FFFFFFF:
            raise ValueError("ms must be 0..%d (about 6 days), got %d" % (0x1FFFFFFF, ms))
        from .policy import Window

        pm._sm.window = Window(ms)
    w = pm._sm.window
    return None if w is None else w.left()


def on_mismatch(pm, policy):
    """What to do about a one-sided bond (BOND_MISMATCH): MISMATCH_REPORT (default: the
    event, and the reconnect storm stopped) or MISMATCH_REPAIR (that peer alone may pair
    again within 60 s; as central our stale bond is deleted), or a callable(event)
    returning one of them. Returns the previous policy."""
    if not callable(policy) and policy not in (MISMATCH_REPORT, MISMATCH_REPAIR):
        raise ValueError("policy must be MISMATCH_REPORT, MISMATCH_REPAIR or a callable")
    old, pm._sm.on_mismatch = pm._sm.on_mismatch, policy
    return old


# --- now-and-then calls: pairing answers, peers, GATT, aioble helpers ------------------


def disconnect_on_failure(pm, event):
    """A ready-made handler: disconnect a link whose securing failed (Nordic's
    pm_handler_disconnect_on_sec_failure). The PM drops links it refuses by itself."""
    if event.id == CONN_SEC_FAILED and event.conn is not None and pm._ble is not None:
        pm._sm.drop_link(event.conn)


def register_services(pm, services):
    """Raw `bluetooth` apps: `ble.gatts_register_services(services)` through the PM,
    which keeps the database's table for Service Changed (aioble's register_services
    is watched after attach()). Returns the handles."""
    if pm._ble is None:
        raise RuntimeError("attach() first")
    handles = pm._ble.gatts_register_services(services)
    pm._registered(services, handles)
    return handles


def local_db_changed(pm, start=1, end=0xFFFF):
    """Send Service Changed (start..end) to subscribed peers: now if connected, when
    they reconnect if bonded (Nordic's pm_local_database_has_changed). False (nothing
    sent) without the firmware's CCCD module."""
    if pm._gatts is None:
        return False
    pm._gatts.local_db_changed(start, end)
    return True


def authorize(pm, fn):
    """Who may read characteristics protected with read=AUTHORIZED (access.py):
    fn(conn_handle, peer_id, attr) -> True to allow; None (the default): nobody
    (ATT 0x08). It runs inside the stack's callback: answer at once."""
    if fn is not None and not callable(fn):
        raise TypeError("authorize() takes a function or None")
    pm._authorizer = fn


def auto_secure(pm, on=True):
    """Client policy (aioble, off by default): a read/write/subscribe that fails with
    ATT 0x05/0x0F/0x0C secures the link (secure()) and is retried once."""
    if on is not True and on is not False:
        raise TypeError("on must be a bool, not %s" % type(on).__name__)
    from . import aiohooks

    aiohooks.auto_secure(pm if on else None)


async def wait_secure(pm, conn, timeout_ms=20000):
    """Peripheral policy "pair on insufficient authentication": wait for the central
    to secure the link itself (no Security Request; protected characteristics make
    it pair). The outcome is judged and reported as secure()'s is."""
    from .secproc import secure

    return await secure(pm._sm, lambda: pm._link(conn), timeout_ms, False)


def passkey_reply(pm, conn, passkey):
    """Answer PASSKEY_REQUEST with the 6-digit passkey the peer displays."""
    from .pairing import passkey_reply

    passkey_reply(pm._sm, lambda: pm._link(conn), passkey)


def numcmp_reply(pm, conn, accept):
    """Answer NUMERIC_COMPARISON: True if both devices show the same number."""
    from .pairing import numcmp_reply

    numcmp_reply(pm._sm, lambda: pm._link(conn), accept)


def delete_all(pm):
    for pid in pm._db.ids():
        pm.delete(pid)
    pm._emit(PEERS_DELETE_SUCCEEDED)


def rank_highest(pm, peer_id):
    pm._db.check(peer_id)
    pm._db.rank_highest(peer_id)


def app_data(pm, peer_id):
    return pm._db.app_data(peer_id)


def set_app_data(pm, peer_id, data):
    try:
        pm._db.set_app_data(peer_id, data)
    except OSError as e:
        pm._emit(PEER_DATA_UPDATE_FAILED, peer_id=peer_id, error=e)
        raise
    pm._emit(PEER_DATA_UPDATE_SUCCEEDED, peer_id=peer_id)


def whitelist(pm, peer_ids=None, limit=None, skip=0, device_privacy=False):
    """A Whitelist of these bonded peers (None: all of them, now and later); see README."""
    from .whitelist import make

    return make(pm._idm, pm._db, peer_ids, limit, skip, device_privacy)


def accept(pm, wl):
    """Let only centrals on this Whitelist stay connected (None: anyone); others are
    disconnected as they connect (CONN_REFUSED). Returns the previous list."""
    return pm._idm.accept(wl)


def scan(pm, wl, duration_ms=5000, interval_us=30000, window_us=30000, active=False, dedup=True):
    """aioble: `async with pm.scan(wl) as s: async for result, peer_id in s` -- the
    whitelisted peers' results (RPAs resolved); leaving the `async with` stops it."""
    from .whitelist import Whitelist

    if not isinstance(wl, Whitelist):
        raise TypeError("wl must be a Whitelist, not %s" % type(wl).__name__)
    from .scanning import Scan

    return Scan(wl, duration_ms, interval_us, window_us, active, dedup)


async def connect(pm, peer_id, timeout_ms=10000, secure=True):
    """aioble: find the bonded peer behind any RPA, connect and (by default) secure;
    asyncio.TimeoutError if it is not seen in time."""
    from .scanning import connect

    return await connect(pm, peer_id, timeout_ms, secure)


async def advertise(pm, interval_us, wl=None, **kwargs):
    """aioble: advertise until a central on `wl` connects, refusing others. wl=None:
    every bonded peer, or any central while there is no bond (so the first can happen)."""
    from .scanning import advertise

    if wl is None:
        wl = pm.whitelist()
        if not len(wl):
            wl = None
    return await advertise(pm, interval_us, wl, kwargs)


async def services(pm, conn, uuid=None, timeout_ms=10000, cached=True):
    """aioble: the peer's services (ClientService objects, `uuid` filters) from the
    remote database cache, else discovered and, for a bonded peer, stored (gattc.py)."""
    from .gattc import services

    return await services(pm, conn, uuid, timeout_ms, cached)


def forget_services(pm, peer_id):
    """Drop the peer's remote database cache; True if one was stored."""
    from .gattc import forget_services

    return forget_services(pm, peer_id)


def show(pm):
    """Print the peer table (never key material), then capabilities()."""
    from . import peerinfo

    peerinfo.show(pm._db, pm._links)
    show_caps(capabilities(pm))
