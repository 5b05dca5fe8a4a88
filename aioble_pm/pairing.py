"""Pairing methods and passkeys, the security manager's rarely used part (loaded by the
first pairing that needs a passkey, or when the app names one of these): the method
table (Core Vol 3 Part H 2.3.5.1), passkeys drawn without bias, and the passkey and
numeric-comparison exchange of a link (_IRQ_PASSKEY_ACTION and the app's replies).
`aioble_pm.security` still names everything here.
"""
from micropython import const
import os
import time

from .security import IO_KEYBOARD_DISPLAY, SecurityError, _flag, _int, _io
from .events import PASSKEY_DISPLAY, PASSKEY_REQUEST
from .events import NUMERIC_COMPARISON as _NUMCMP_EVENT  # (the method has the same name)

NAMES = ("JUST_WORKS", "PASSKEY", "NUMERIC_COMPARISON", "OOB", "ACTION_NONE", "ACTION_OOB", "ACTION_INPUT",
         "ACTION_DISPLAY", "ACTION_NUMERIC_COMPARISON", "ACTION_OOB_SC", "pairing_method", "central_needs_io",
         "authenticated", "new_passkey")
_PASSKEY_LIMIT = const(1000000)

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


# --- a link's passkey exchange (the security manager's) ---------------------------


def passkey_action(sm, handle, action, passkey):
    """_IRQ_PASSKEY_ACTION: show a new passkey (DISPLAY), or ask the app (INPUT, NUMCMP)."""
    link = sm._links.get(handle)
    if link is not None:
        link.touch()
        sm.start(link)
    pid = link and link.peer_id
    if action == ACTION_DISPLAY:
        passkey = new_passkey()
        sm.ble.gap_passkey(handle, action, passkey)
        sm._emit(PASSKEY_DISPLAY, conn=handle, peer_id=pid, passkey=passkey)
    elif action == ACTION_INPUT or action == ACTION_NUMERIC_COMPARISON:
        if link is not None:
            link.passkey = action
            link.passkey_at = time.ticks_ms()
        sm._emit(PASSKEY_REQUEST if action == ACTION_INPUT else _NUMCMP_EVENT,
                 conn=handle, peer_id=pid, passkey=passkey if action == ACTION_NUMERIC_COMPARISON else None)


def passkey_reply(sm, find_link, passkey):
    """The app's passkey for PASSKEY_REQUEST (arguments checked before the link)."""
    if type(passkey) is not int:
        raise TypeError("passkey must be an int, not %s" % type(passkey).__name__)
    if not 0 <= passkey <= 999999:
        raise ValueError("passkey must be 0..999999, got %d" % passkey)
    link = _pending_action(find_link(), ACTION_INPUT)
    link.passkey = "passkey"  # a failure from now on means this passkey was wrong
    link.passkey_at = None
    sm.ble.gap_passkey(link.handle, ACTION_INPUT, passkey)


def numcmp_reply(sm, find_link, accept):
    """The app's answer to NUMERIC_COMPARISON (True: the numbers match)."""
    if accept is not True and accept is not False:
        raise TypeError("accept must be a bool, not %s" % type(accept).__name__)
    link = _pending_action(find_link(), ACTION_NUMERIC_COMPARISON)
    link.passkey = "numcmp"
    link.passkey_at = None
    try:
        sm.ble.gap_passkey(link.handle, ACTION_NUMERIC_COMPARISON, 1 if accept else 0)
    except OSError:
        if accept:
            raise  # a rejection is passed back by NimBLE as an error (BLE_HS_SM_US_ERR)
    if not accept:
        # NimBLE sends Pairing Failed to the peer and raises no IRQ here (no enc_cb):
        # the procedure ends now, or secure() would wait for the peer to give up
        sm.settle_failure(link, SecurityError(SecurityError.NUMCMP, "rejected here"))


def _pending_action(link, action):
    if link.passkey != action:
        raise ValueError("no %s pending on this connection" % ("passkey request", "numeric comparison")[action == ACTION_NUMERIC_COMPARISON])
    return link
