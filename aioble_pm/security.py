"""Security manager, pure parts: security parameters and their validation, SecurityError.
Loaded when first named here (module __getattr__): the pairing-method table and passkeys
(pairing.py) and repeated-attempts protection (attempts.py, at the first failed pairing).

Spec: Core Vol 3 Part H 3.5 (pairing fields). Validation rules follow Nordic's Peer
Manager.
"""
from micropython import const

# IO capabilities (SMP Pairing Request/Response).
IO_DISPLAY_ONLY = const(0)
IO_DISPLAY_YESNO = const(1)
IO_KEYBOARD_ONLY = const(2)
IO_NO_INPUT_OUTPUT = const(3)
IO_KEYBOARD_DISPLAY = const(4)

# Key distribution bits (kdist_own / kdist_peer).
KEY_ENC = const(1)  # LTK + EDIV + Rand (legacy pairing; LE SC derives its LTK)
KEY_ID = const(2)  # IRK + identity address
KEY_SIGN = const(4)  # CSRK
KEY_LINK = const(8)  # derive a BR/EDR link key

class SecurityError(Exception):
    """Securing a link failed; `.reason` says why (one of the constants below)."""

    TIMEOUT = "timeout"
    REJECTED = "rejected"
    KEY_MISSING = "key missing"  # the peer lost its keys (its bond was deleted)
    KEY_SIZE = "key size"
    NOT_AUTHENTICATED = "not authenticated"
    NOT_SC = "not LE secure connections"
    REPEATED_ATTEMPTS = "repeated attempts"
    STORAGE_FULL = "storage full"
    PASSKEY = "passkey"
    NUMCMP = "numeric comparison"
    DISCONNECTED = "disconnected"
    DAMAGED = "damaged bond"  # our stored keys for this peer could not be read
    UNSUPPORTED = "unsupported"  # the binding cannot do what this pairing needs
    PAIRING_CLOSED = "pairing closed"  # a new bond outside the pairing window (pm.pairing_window)

    def __init__(self, reason, detail=None):
        super().__init__("%s: %s" % (reason, detail) if detail else reason)
        self.reason = reason


def pairing_disabled():
    return SecurityError(SecurityError.REJECTED, "pairing is disabled (sec_params(None))")


def _flag(value, name):
    if value is True or value is False:
        return value
    if type(value) is not int:
        raise TypeError("%s must be a bool, not %s" % (name, type(value).__name__))
    if value != 0 and value != 1:
        raise ValueError("%s must be True/False (or 1/0), got %d" % (name, value))
    return value == 1


def _int(value, name):
    if type(value) is not int:
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    return value


def _io(value, name):
    if not 0 <= _int(value, name) <= IO_KEYBOARD_DISPLAY:
        raise ValueError("%s must be 0..4 (IO_DISPLAY_ONLY..IO_KEYBOARD_DISPLAY), got %d" % (name, value))
    return value


class SecParams:
    """Pairing parameters, validated with every rule of Nordic's sec_params_verify.

    bond, mitm, lesc (LE Secure Connections), keypress, oob: bools; io: IO_*;
    min_key_size/max_key_size: 7..16; kdist_own/kdist_peer: KEY_* bits we/the peer
    distribute (default KEY_ENC|KEY_ID both ways when bonding, else 0); sc_only:
    refuse links not paired with LE Secure Connections.

    MicroPython's binding has knobs only for bond, mitm, io and lesc (to_config()).
    Its NimBLE always offers 16-byte keys and distributes ENC|ID|SIGN both ways
    when bonding, and sends no keypress notifications. So kdist and keypress are
    validated, not negotiated; min_key_size, mitm and sc_only are enforced after
    the fact on the finished link (shortfall()). A key longer than max_key_size is
    not refused: it is never weaker.
    """

    def __init__(
        self,
        bond=True,
        mitm=False,
        lesc=True,
        keypress=False,
        io=IO_NO_INPUT_OUTPUT,
        oob=False,
        min_key_size=7,
        max_key_size=16,
        kdist_own=None,
        kdist_peer=None,
        sc_only=False,
    ):
        self.bond = _flag(bond, "bond")
        self.mitm = _flag(mitm, "mitm")
        self.lesc = _flag(lesc, "lesc")
        self.keypress = _flag(keypress, "keypress")
        self.oob = _flag(oob, "oob")
        self.sc_only = _flag(sc_only, "sc_only")
        self.io = _int(io, "io")
        self.min_key_size = _int(min_key_size, "min_key_size")
        self.max_key_size = _int(max_key_size, "max_key_size")
        default = KEY_ENC | KEY_ID if self.bond else 0
        self.kdist_own = default if kdist_own is None else _int(kdist_own, "kdist_own")
        self.kdist_peer = default if kdist_peer is None else _int(kdist_peer, "kdist_peer")
        self._verify()

    def _verify(self):
        # Nordic's rules, in Nordic's order; each message names its rule.
        if self.oob and not self.mitm:
            raise ValueError("oob requires mitm: oob=True needs mitm=True")
        if not 0 <= self.io <= IO_KEYBOARD_DISPLAY:
            raise ValueError("io must be 0..4 (IO_DISPLAY_ONLY..IO_KEYBOARD_DISPLAY), got %d" % self.io)
        if self.mitm and self.io == IO_NO_INPUT_OUTPUT and not self.oob:
            raise ValueError("mitm requires io or oob: mitm=True needs an io other than IO_NO_INPUT_OUTPUT, or oob=True")
        if self.min_key_size > self.max_key_size:
            raise ValueError("min_key_size %d > max_key_size %d" % (self.min_key_size, self.max_key_size))
        if self.min_key_size < 7:
            raise ValueError("min_key_size must be >= 7, got %d" % self.min_key_size)
        if self.max_key_size > 16:
            raise ValueError("max_key_size must be <= 16, got %d" % self.max_key_size)
        for name in ("kdist_own", "kdist_peer"):
            if not 0 <= getattr(self, name) <= 15:
                raise ValueError("%s must be KEY_* bits (0..15), got %d" % (name, getattr(self, name)))
        enc_id = (self.kdist_own | self.kdist_peer) & (KEY_ENC | KEY_ID)
        if not self.bond and enc_id:
            raise ValueError("bond=False distributes no keys: kdist_own/kdist_peer must not hold KEY_ENC or KEY_ID")
        if self.bond and not enc_id:
            raise ValueError("bond=True needs keys: KEY_ENC or KEY_ID in kdist_own or kdist_peer")
        if self.sc_only and not self.lesc:
            raise ValueError("sc_only requires lesc: sc_only=True needs lesc=True")

    def to_config(self):
        """The ble.config() keywords the binding has for these parameters."""
        return {"bond": self.bond, "mitm": self.mitm, "io": self.io, "le_secure": self.lesc}

    def shortfall(self, authenticated, key_size, sc=None):
        """SecurityError for an encrypted link that falls below these parameters, or
        None. sc=None means "not known" and is not judged."""
        if key_size < self.min_key_size:
            return SecurityError(
                SecurityError.KEY_SIZE, "key_size %d < min_key_size %d" % (key_size, self.min_key_size)
            )
        if self.mitm and not authenticated:
            return SecurityError(SecurityError.NOT_AUTHENTICATED, "mitm=True but the link is unauthenticated")
        if self.sc_only and sc is False:
            return SecurityError(SecurityError.NOT_SC, "sc_only=True but the link used legacy pairing")
        return None

    def __repr__(self):
        return "<SecParams bond=%d mitm=%d lesc=%d keypress=%d io=%d oob=%d key_size=%d..%d kdist=%d/%d sc_only=%d>" % (
            self.bond, self.mitm, self.lesc, self.keypress, self.io, self.oob,
            self.min_key_size, self.max_key_size, self.kdist_own, self.kdist_peer, self.sc_only,
        )


def __getattr__(name):
    # parts of the security manager in modules of their own, loaded when first named
    if name == "RepeatedAttempts":  # at the first failed pairing
        from .attempts import RepeatedAttempts

        return RepeatedAttempts
    from . import pairing  # method selection and passkeys

    if name in pairing.NAMES:
        return getattr(pairing, name)
    raise AttributeError(name)
