"""Security manager, pure parts: security parameters and their validation, the
pairing-method table, passkeys, SecurityError (repeated-attempts protection: attempts.py,
loaded at the first failed pairing; `security.RepeatedAttempts` still names it).

Spec: Core Vol 3 Part H 2.3.5.1 (method selection), 2.3.6 (repeated attempts), 3.5
(pairing fields). Validation rules and repeated-attempts numbers follow Nordic's
Peer Manager.
"""
from micropython import const
import os

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

# Pairing methods. Plain ints, not const(): SecurityError has a PASSKEY reason too,
# and a const() name would be folded into that class attribute's assignment.
JUST_WORKS = 0
PASSKEY = 1
NUMERIC_COMPARISON = 2
OOB = 3

# What each side is asked to do: the `action` of MicroPython's _IRQ_PASSKEY_ACTION
# (NimBLE's BLE_SM_IOACT_*), answered with ble.gap_passkey().
ACTION_NONE = const(0)
ACTION_OOB = const(1)
ACTION_INPUT = const(2)
ACTION_DISPLAY = const(3)
ACTION_NUMERIC_COMPARISON = const(4)
ACTION_OOB_SC = const(5)

_PASSKEY_LIMIT = const(1000000)


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


# Core Vol 3 Part H Table 2.8, index responder_io * 5 + initiator_io:
# 0 Just Works; 1 initiator inputs, responder displays; 2 initiator displays,
# responder inputs; 3 both input; 4/5/6 numeric comparison under LE SC, else
# Just Works / like 1 / like 2 under legacy pairing.
_TABLE = b"\x00\x00\x01\x00\x01" b"\x00\x04\x01\x00\x05" b"\x02\x02\x03\x00\x02" b"\x00\x00\x00\x00\x00" b"\x02\x06\x01\x00\x06"


def pairing_method(init_io, resp_io, init_mitm, resp_mitm, sc, init_oob=False, resp_oob=False):
    """(method, initiator_action, responder_action) for a pairing between these
    sides; sc: both sides use LE Secure Connections; *_oob: the OOB data flag each
    side sends."""
    code = _TABLE[_io(resp_io, "resp_io") * 5 + _io(init_io, "init_io")]
    init_mitm = _flag(init_mitm, "init_mitm")
    resp_mitm = _flag(resp_mitm, "resp_mitm")
    sc = _flag(sc, "sc")
    init_oob = _flag(init_oob, "init_oob")
    resp_oob = _flag(resp_oob, "resp_oob")
    if sc and (init_oob or resp_oob):
        return OOB, ACTION_OOB_SC, ACTION_OOB_SC
    if not sc and init_oob and resp_oob:
        return OOB, ACTION_OOB, ACTION_OOB
    if not (init_mitm or resp_mitm) or code == 0:
        return JUST_WORKS, ACTION_NONE, ACTION_NONE
    if code >= 4:
        if sc:
            return NUMERIC_COMPARISON, ACTION_NUMERIC_COMPARISON, ACTION_NUMERIC_COMPARISON
        code -= 4
        if code == 0:
            return JUST_WORKS, ACTION_NONE, ACTION_NONE
    if code == 1:
        return PASSKEY, ACTION_INPUT, ACTION_DISPLAY
    if code == 2:
        return PASSKEY, ACTION_DISPLAY, ACTION_INPUT
    return PASSKEY, ACTION_INPUT, ACTION_INPUT


def central_needs_io(io, mitm, lesc):
    """True if, as the initiator (central) with these parameters, every pairing that
    meets mitm needs a passkey or numeric comparison on our side: MicroPython's binding
    never raises _IRQ_PASSKEY_ACTION for a connection where it is the central, so such
    a pairing cannot finish."""
    if not mitm:
        return False
    for resp_io in range(IO_KEYBOARD_DISPLAY + 1):
        method, action, _ = pairing_method(io, resp_io, True, True, lesc)
        if method != JUST_WORKS and method != OOB and action != ACTION_NONE:
            return True
    return False


def authenticated(method):
    """True if a pairing by `method` gives MITM protection."""
    if _int(method, "method") == JUST_WORKS:
        return False
    if PASSKEY <= method <= OOB:
        return True
    raise ValueError("method must be JUST_WORKS, PASSKEY, NUMERIC_COMPARISON or OOB, got %d" % method)


def new_passkey(urandom=os.urandom):
    """A uniformly random passkey 0..999999: 20 random bits, redrawn while >= 10**6
    (no modulo bias)."""
    while True:
        r = urandom(3)
        n = (r[0] & 0x0F) << 16 | r[1] << 8 | r[2]
        if n < _PASSKEY_LIMIT:
            return n


def __getattr__(name):
    if name == "RepeatedAttempts":  # its own module: most boots see no failed pairing
        from .attempts import RepeatedAttempts

        return RepeatedAttempts
    raise AttributeError(name)
