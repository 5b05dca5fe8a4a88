"""Peer Manager events (Nordic's vocabulary, FACTS §2.2), the constants the public API
takes, and the Event object handlers receive. Imported by every part of the manager, so
it holds nothing else."""
from micropython import const

BONDED_PEER_CONNECTED = const(1)
CONN_SEC_START = const(2)
CONN_SEC_SUCCEEDED = const(3)
CONN_SEC_FAILED = const(4)
CONN_SEC_CONFIG_REQ = const(5)
PASSKEY_DISPLAY = const(6)
PASSKEY_REQUEST = const(7)
NUMERIC_COMPARISON = const(8)
STORAGE_FULL = const(9)
PEER_DELETE_SUCCEEDED = const(10)
PEER_DELETE_FAILED = const(11)
PEERS_DELETE_SUCCEEDED = const(12)
PEER_DATA_UPDATE_SUCCEEDED = const(13)
PEER_DATA_UPDATE_FAILED = const(14)
ERROR_UNEXPECTED = const(15)
PEER_EVICTED = const(16)
CONN_REFUSED = const(17)  # a central not on the accept list was disconnected (.addr says who)
BOND_MISMATCH = const(18)  # a one-sided bond (.lost: "peer" or "local"; .advice for the user)
LOCAL_DB_CHANGED = const(19)  # Service Changed armed: pm.local_db_changed(), or a new database at start-up
SERVICE_CHANGED_CONFIRMED = const(20)  # a client confirmed the Service Changed indication

# when_full
EVICT_LRU = const(0)
REJECT = const(1)

# pm.on_mismatch(policy)
MISMATCH_REPORT = const(0)  # the event only (and the storm stopped)
MISMATCH_REPAIR = const(1)  # that peer alone may pair again for 60 s (as central: our stale bond is deleted)

# peer_ids(skip=...)
SKIP_NO_ID_ADDR = const(1)
SKIP_NO_IRK = const(2)

# CONN_SEC_START / SUCCEEDED .procedure
PROC_ENCRYPTION = const(0)  # re-encrypted with stored keys
PROC_BONDING = const(1)  # paired and stored a bond
PROC_PAIRING = const(2)  # paired without a bond

_NAMES = (
    "", "BONDED_PEER_CONNECTED", "CONN_SEC_START", "CONN_SEC_SUCCEEDED", "CONN_SEC_FAILED",
    "CONN_SEC_CONFIG_REQ", "PASSKEY_DISPLAY", "PASSKEY_REQUEST", "NUMERIC_COMPARISON",
    "STORAGE_FULL", "PEER_DELETE_SUCCEEDED", "PEER_DELETE_FAILED", "PEERS_DELETE_SUCCEEDED",
    "PEER_DATA_UPDATE_SUCCEEDED", "PEER_DATA_UPDATE_FAILED", "ERROR_UNEXPECTED", "PEER_EVICTED",
    "CONN_REFUSED", "BOND_MISMATCH", "LOCAL_DB_CHANGED", "SERVICE_CHANGED_CONFIRMED",
)


class Event:
    """What handlers registered with `PeerManager.register()` receive.

    id: one of the event constants; conn: connection handle or None; peer_id or None;
    error: a SecurityError / exception or None (CONN_SEC_CONFIG_REQ: SecurityError
    DAMAGED when the bond's keys could not be read); passkey (PASSKEY_DISPLAY,
    NUMERIC_COMPARISON); procedure (CONN_SEC_START/SUCCEEDED); addr: (addr_type, addr)
    of the central (CONN_REFUSED) or of a bond not imported (STORAGE_FULL in migrate()).
    For CONN_SEC_CONFIG_REQ call `allow()` to let a bonded peer pair again.
    BOND_MISMATCH: lost ("peer" or "local": who lost the keys), advice (what to do).
    """

    def __init__(self, id, conn=None, peer_id=None, error=None, passkey=None, procedure=None, addr=None,
                 lost=None, advice=None):
        self.id = id
        self.lost = lost
        self.advice = advice
        self.addr = addr
        self.conn = conn
        self.peer_id = peer_id
        self.error = error
        self.passkey = passkey
        self.procedure = procedure
        self.allowed = False

    def allow(self, allow=True):
        self.allowed = bool(allow)

    def __repr__(self):
        return "<Event %s conn=%s peer_id=%s%s%s>" % (
            _NAMES[self.id] if 0 < self.id < len(_NAMES) else self.id,
            self.conn, self.peer_id,
            "" if self.procedure is None else " procedure=" + ("ENCRYPTION", "BONDING", "PAIRING")[self.procedure],
            " error=%r" % (self.error,) if self.error else "",
        )


class Emitter:
    """The registered handlers, called in order; a failing handler is reported, never
    raised into the stack's IRQ."""

    def __init__(self):
        self.handlers = ()  # a tuple: none costs no RAM, and a register() mid-event is safe

    def __call__(self, id, **kw):
        ev = Event(id, **kw)
        for h in self.handlers:
            try:
                h(ev)
            except Exception as e:
                print("aioble_pm: event handler failed:", repr(e))
        return ev
