"""The optional parts of PeerManager's API, loaded on first use (PeerManager.__getattr__),
so that the core's import does not grow with them: the capability probe, backup entry
points (backup.py), pins, the pairing window and the mismatch policy (policy.py).
Each function takes the PeerManager first; `pm.export(key=k)` calls `export(pm, key=k)`.

The capability probe tells things without radio traffic. MicroPython's `bluetooth`
module has the same methods on every binding, so the binding is inferred from what is
known to differ (FACTS §3.3, §3.4): ESP32 builds use NimBLE (esp-nimble, keys stored
before ENCRYPTION_UPDATE); rp2 builds with `gap_pair` are NimBLE (rp2's BTstack build has
no pairing); only NimBLE ever asks the Python secret store, so a store holding our IRK
(secret type 10) was written by NimBLE; a stored bond's blob length tells upstream (80)
from esp-nimble 1.5 (88).
"""
import sys

from .events import MISMATCH_REPORT, MISMATCH_REPAIR
from .nimble import cccd_module

NAMES = ("capabilities", "export", "restore", "pin", "pinned", "pairing_window", "on_mismatch")


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
            n = db.read_secret(2, pid, bytearray(128)) if db.has_secret(pid, 2) else 0
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


def capabilities(pm=None):
    """A dict of what can be done; with a PeerManager also its store. Keys: binding,
    binding_why, nimble_order, pairing, passkey_as_central, numcmp_as_central, cccd,
    cryptolib, platform; with pm: max_peers, peers, sector_size, sector_count,
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
