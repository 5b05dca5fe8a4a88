"""Drives `secure()` on one link: joins a procedure already running, starts one
(central: gap_pair encrypts or pairs; peripheral: the Security Request policy), and
waits for its outcome, its timeout, or an unanswered passkey request.

Security Request policy (peripheral). The central gets _SECREQ_WINDOW_MS to start
encryption itself: iOS does on reconnect and answers a Security Request sent at that
moment with SMP error 0x0D, and a request in the same burst as the connection event is
sometimes dropped by the central's host. Then the request goes out, and again after
_SECREQ_FIRST_MS, doubling up to _SECREQ_MAX_MS, while nothing happens on SMP, until
secure()'s timeout. NimBLE refuses a repeat with EALREADY while its earlier request's
SMP procedure lives (ble_sm_slave_initiate, 30 s); the repeats reach the air where the
stack lets them.
"""
from micropython import const
import asyncio
import time

from .events import PROC_ENCRYPTION, PROC_BONDING
from .links import Proc
from .security import SecurityError, pairing_disabled

_EALREADY = const(114)  # errno of gap_pair while an SMP procedure runs (MP_EALREADY)
_GRACE_MS = const(100)  # how long a failed passkey pairing waits to learn whether the link broke
_SECREQ_WINDOW_MS = const(250)
_SECREQ_FIRST_MS = const(500)
_SECREQ_MAX_MS = const(4000)


async def secure(sm, find_link, timeout_ms, start=True):
    """Secure the link find_link() gives (checked after timeout_ms; see
    PeerManager.secure): join a running procedure, take the fast path of an encrypted
    link that meets the parameters, else start one (start=False: wait for the peer to
    start it, PeerManager.wait_secure) and wait."""
    if type(timeout_ms) is not int:
        raise TypeError("timeout_ms must be an int, not %s" % type(timeout_ms).__name__)
    if timeout_ms <= 0:
        raise ValueError("timeout_ms must be > 0, got %d" % timeout_ms)
    link = find_link()
    sm.apply_params()
    if link.refused is not None:
        raise link.refused
    if link.proc is not None and not link.proc.done:
        return await _join(link.proc, timeout_ms)  # one procedure, one result for every caller
    params = sm.params
    if link.encrypted and not link.securing():
        err = None if params is None else sm.shortfall(link)
        if err is None:
            return link.peer_id
        if err.reason == SecurityError.NOT_SC:  # no re-encryption makes a legacy link SC
            sm.refuse(link, err)
            raise err
    wait = 0 if sm.ra is None else sm.ra.check(link.key)
    if wait:
        raise SecurityError(SecurityError.REPEATED_ATTEMPTS, "wait %d ms" % wait)
    if link.peer_id is None:
        if params is None:
            raise pairing_disabled()
        from .pairing import central_needs_io  # (a pairing: pairing.py is needed anyway)

        if not link.peripheral and central_needs_io(params.io, params.mitm, params.lesc):
            raise SecurityError(SecurityError.UNSUPPORTED,
                                "pairing with mitm=True as central needs a passkey or numeric comparison, and "
                                "MicroPython's binding raises _IRQ_PASSKEY_ACTION only as peripheral")
    proc = link.proc = Proc(asyncio.ThreadSafeFlag())
    t0 = time.ticks_ms()
    try:
        if start and link.peripheral:
            await _request_security(sm, link, proc, t0, timeout_ms)
        elif start:
            _gap_pair(sm, link, False)
        await _await_outcome(sm, link, proc, t0, timeout_ms)
    finally:
        if not proc.done:  # cancelled: whoever joined must not wait for a result never set
            proc.done = True
            proc.result = SecurityError(SecurityError.TIMEOUT, "the secure() that ran the procedure was cancelled")
            proc.flag.set()
        if link.proc is proc:
            link.proc = None
    if isinstance(proc.result, SecurityError):
        raise proc.result
    return proc.result

async def _join(proc, timeout_ms):
    start = time.ticks_ms()
    while not proc.done:
        if time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
            raise SecurityError(SecurityError.TIMEOUT, "no answer in %d ms" % timeout_ms)
        await asyncio.sleep_ms(10)
    if isinstance(proc.result, SecurityError):
        raise proc.result
    return proc.result

def _gap_pair(sm, link, repeat):
    """Start the procedure (central: encrypt or pair; peripheral: a Security
    Request). EALREADY: one runs already (the peer started it, or our earlier
    Security Request is still pending in NimBLE): wait for it."""
    if not repeat:
        sm.start(link, PROC_ENCRYPTION if link.peer_id is not None else PROC_BONDING)
    sm.in_gap_pair = link
    try:
        sm.ble.gap_pair(link.handle)
    except OSError as e:
        if e.errno != _EALREADY and not repeat:
            sm.fail(link, SecurityError(SecurityError.REJECTED, "gap_pair: %r" % e))
    finally:
        sm.in_gap_pair = None

async def _request_security(sm, link, proc, start, timeout_ms):
    """Peripheral: let the central start encryption itself for a moment, then send
    the Security Request, again with back-off while nothing happens on SMP."""
    if link.busy:
        return  # the central started already
    seen = link.activity
    await _wait(proc, min(_SECREQ_WINDOW_MS, timeout_ms))
    gap = _SECREQ_FIRST_MS
    repeat = False
    while not proc.done and link.refused is None and link.activity == seen:
        left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
        if left <= 0:
            return
        _gap_pair(sm, link, repeat)
        repeat = True
        await _wait(proc, min(gap, left))
        gap = min(gap * 2, _SECREQ_MAX_MS)

async def _wait(proc, ms):
    if ms > 0:
        try:
            await asyncio.wait_for_ms(proc.flag.wait(), ms)
        except asyncio.TimeoutError:
            pass

async def _await_outcome(sm, link, proc, start, timeout_ms):
    failed_at = None
    while not proc.done:
        if link.pending:  # woken after the stack's whole IRQ sequence: no keys came
            sm.settle(link)
            continue
        now = time.ticks_ms()
        if link.enc_failed is not None:
            if failed_at is None:
                failed_at = now
            elif time.ticks_diff(now, failed_at) >= _GRACE_MS:
                sm.settle_failure(link, link.enc_failed)  # the link is still up: the real cause
                continue
        left = timeout_ms - time.ticks_diff(now, start)
        if failed_at is not None:
            left = min(left, _GRACE_MS - time.ticks_diff(now, failed_at))
        asked = link.passkey_at
        if asked is not None:
            left = min(left, sm.passkey_timeout_ms - time.ticks_diff(now, asked))
        if left <= 0 and failed_at is None:
            if asked is not None:
                sm.attempt_failed(link)
                sm.refuse(link, SecurityError(
                    SecurityError.PASSKEY, "no answer to the passkey request in %d ms" % sm.passkey_timeout_ms))
            elif link.damaged:  # NimBLE refused the peer's encryption without an IRQ
                sm.fail(link, SecurityError(SecurityError.DAMAGED, "the stored keys could not be read"))
            else:
                sm.fail(link, SecurityError(SecurityError.TIMEOUT, "no answer in %d ms" % timeout_ms))
            return
        await _wait(proc, max(left, 1))
