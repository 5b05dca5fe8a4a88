"""Security Manager of a simulated device: pairing, key distribution, bonding, and
encryption with stored keys, following NimBLE 1.4 (mynewt-nimble ble_sm.c, ble_sm_lgcy.c,
ble_sm_sc.c, ble_store.c, ble_store_util.c) as MicroPython drives it (FACTS 3.3).

What is real: the pairing-method tables, the legacy c1/s1 and LE SC f4/f5/f6/g2
computations (a wrong passkey really fails the confirm check), the IRQ order, which
secrets are read and written when, and with what values. What is not: ECDH (both sides
derive the same DHKey from the two public values, no P-256), the 20 passkey rounds of LE
SC are exchanged in one batch, and the link layer compares session-key fingerprints
instead of encrypting packets.
"""
from micropython import const
import os
from . import cccd, crypto
from .layout import Sec, key as sec_key

OUR_SEC = const(1)
PEER_SEC = const(2)

# IO actions (BLE_SM_IOACT_*, MicroPython _PASSKEY_ACTION_*)
NONE = const(0)
INPUT = const(2)
DISP = const(3)
NUMCMP = const(4)

# SMP error codes (Vol 3 Part H 3.5.5)
ERR_PASSKEY = const(0x01)
ERR_CONFIRM = const(0x04)
ERR_CMD_NOT_SUPP = const(0x07)
ERR_UNSPECIFIED = const(0x08)
ERR_INVAL = const(0x0A)
ERR_ENC_KEY_SZ = const(0x06)
ERR_DHKEY = const(0x0B)
ERR_NUMCMP = const(0x0C)

_AUTH_BOND = const(0x01)
_AUTH_MITM = const(0x04)
_AUTH_SC = const(0x08)
_DIST_ENC = const(1)
_DIST_ID = const(2)
_DIST_SIGN = const(4)
TIMEOUT_MS = const(30000)  # BLE_SM_TIMEOUT_MS

# [responder io][initiator io] -> action; ble_sm_lgcy.c and ble_sm_sc.c tables
_LGCY_INIT = (b"\x00\x00\x02\x00\x02", b"\x00\x00\x02\x00\x02", b"\x03\x03\x02\x00\x03",
              b"\x00\x00\x00\x00\x00", b"\x03\x03\x02\x00\x03")
_LGCY_RESP = (b"\x00\x00\x03\x00\x03", b"\x00\x00\x03\x00\x03", b"\x02\x02\x02\x00\x02",
              b"\x00\x00\x00\x00\x00", b"\x02\x02\x03\x00\x02")
_SC_INIT = (b"\x00\x00\x02\x00\x02", b"\x00\x04\x02\x00\x04", b"\x03\x03\x02\x00\x03",
            b"\x00\x00\x00\x00\x00", b"\x03\x04\x02\x00\x04")
_SC_RESP = (b"\x00\x00\x03\x00\x03", b"\x00\x04\x03\x00\x04", b"\x02\x02\x02\x00\x02",
            b"\x00\x00\x00\x00\x00", b"\x02\x04\x03\x00\x04")

_FP_BLOCK = b"blesim:session\x00\x00"


def method(req, rsp, initiator):
    """(action for this side, sc, authenticated) from the two pairing commands
    (io, oob, authreq, max_key, init_dist, resp_dist): ble_sm_*_io_action."""
    sc = bool(req[2] & rsp[2] & _AUTH_SC)
    if not (req[2] | rsp[2]) & _AUTH_MITM or req[0] > 4 or rsp[0] > 4:
        return NONE, sc, False
    if sc:
        table = _SC_INIT if initiator else _SC_RESP
    else:
        table = _LGCY_INIT if initiator else _LGCY_RESP
    a = table[rsp[0]][req[0]]
    return a, sc, a != NONE


def pair_cmd(d, init_dist, resp_dist):
    return (d.io, 0, (_AUTH_BOND if d.bond else 0) | (_AUTH_MITM if d.mitm else 0)
            | (_AUTH_SC if d.le_secure else 0), 16, init_dist, resp_dist)


def _cmd_bytes(code, cmd):
    return bytes((code,) + tuple(cmd))


def set_state(c, encrypted, authenticated, bonded, key_size):
    """ble_sm_update_sec_state: authenticated and bonded are never revoked from a link;
    a key size of 0 keeps the old one."""
    c.encrypted = encrypted
    c.authenticated = c.authenticated or authenticated
    c.bonded = c.bonded or bonded
    if key_size:
        c.key_size = key_size


def ltk_bytes(sec):
    """The LTK NimBLE encrypts with: the record's bytes even without ltk_present
    (ble_sm_enc_initiate / ble_sm_ltk_req_rx never look at the flag): zeros, usually."""
    return sec.ltk if sec.ltk is not None else sec.ltk_raw


def fingerprint(ltk):
    """What the link layer compares: both ends must derive the same session key."""
    return crypto.aes(ltk, _FP_BLOCK)


class Proc:
    """One security procedure on one connection (struct ble_sm_proc)."""

    def __init__(self, initiator):
        self.initiator = initiator
        self.state = "pair"
        self.req = self.rsp = None
        self.action = NONE
        self.sc = self.auth = self.bonding = False
        self.key_size = 16
        self.io = None  # injected passkey (int), or True for an accepted comparison
        self.peer_conf = None
        self.pending = None  # peer message that waits for our IO
        self.stk = None
        self.ltk = None
        self.our = None  # Sec we distributed / derived
        self.peer = None  # Sec the peer distributed
        self.peer_id = None  # (type, addr) from the peer's Identity Address Information
        self.stamp = 0


# -- entry points from the bluetooth API --------------------------------------------


def gap_pair(d, c):
    """ble_gap_security_initiate: central re-encrypts with a stored LTK or pairs;
    peripheral sends a Security Request."""
    if c.smp is not None:
        return 114  # EALREADY
    if c.master:
        sec = d._read_sec(PEER_SEC, c.peer_id)
        if sec is not None and sec.ltk is not None:
            enc_initiate(d, c, sec)
        else:
            pair_initiate(d, c)
    else:
        p = _start(d, c, False)
        p.state = "secreq"
        d._link(c, "secreq", pair_cmd(d, 7, 7)[2])
    return 0


def pair_initiate(d, c):
    p = _start(d, c, True)
    p.req = pair_cmd(d, 7, 7)
    d._link(c, "preq", p.req)


def enc_initiate(d, c, sec):
    p = _start(d, c, True)
    p.state = "restore"
    p.key_size = sec.key_size
    p.auth = sec.authenticated
    d._link(c, "enc", sec.ediv, sec.rand, fingerprint(ltk_bytes(sec)))


def inject(d, c, action, passkey):
    """ble_sm_inject_io via gap_passkey: returns an errno-style code (0 = ok)."""
    if action not in (INPUT, DISP, NUMCMP):
        return 22  # EINVAL
    p = c.smp
    if p is None:
        return 2  # ENOENT
    if p.io is not None:
        return 114  # EALREADY
    if action != p.action or not p.state.startswith("io"):
        return 22
    if action == NUMCMP:
        if not passkey:
            # ble_sm_inject_io: Pairing Failed to the peer, and no enc_cb for us: the side
            # that rejects gets no IRQ at all (measured on real NimBLE too)
            c.smp = None
            d._link(c, "fail", ERR_NUMCMP)
            return -(0x400 + ERR_NUMCMP)  # BLE_HS_SM_US_ERR, passed through as -err
        p.io = True
    else:
        if passkey < 0 or passkey > 999999:
            return 22
        p.io = passkey
    _touch(d, c, p)
    _advance(d, c, p)
    return 0


# -- messages from the peer -----------------------------------------------------------


def on_msg(d, c, op, a):
    p = c.smp
    if op == "secreq":
        if not c.master:
            d._link(c, "fail", ERR_CMD_NOT_SUPP)
        elif d.secreq_ignore > 0:
            d.secreq_ignore -= 1  # blesim.ignore_security_requests: lost in the connect burst
        elif p is None:
            # ble_sm_sec_req_rx: any record found is used as it is (no ltk_present check,
            # unlike gap_pair's ble_gap_security_initiate): no LTK -> the zero LTK
            sec = d._read_sec(PEER_SEC, c.peer_id) if a[0] & _AUTH_BOND else None
            if sec is not None and not (a[0] & _AUTH_MITM and not sec.authenticated):
                enc_initiate(d, c, sec)
            else:
                pair_initiate(d, c)
    elif op == "preq":
        _pair_req(d, c, tuple(a[0]))
    elif op == "fail":
        if p is not None:
            c.smp = None
            d._enc_irq(c)
    elif op == "enc":
        _enc_req(d, c, a[0], a[1], a[2])
    elif op == "encrsp":
        _enc_rsp(d, c, a)
    elif op == "mic":
        d._drop(c, 0x3D)
    elif p is None:
        return  # stray message for a finished procedure
    elif op == "prsp":
        _pair_rsp(d, c, p, tuple(a[0]))
    else:
        _touch(d, c, p)
        _step(d, c, p, op, a)


def _start(d, c, initiator):
    p = Proc(initiator)
    c.smp = p
    _touch(d, c, p)
    return p


def _touch(d, c, p):
    """(Re)arm the 30 s SMP timer, like ble_sm_proc_set_timer."""
    p.stamp += 1
    d._later(TIMEOUT_MS, _timeout, c, p, p.stamp)


def _timeout(d, c, p, stamp):
    if c.smp is p and p.stamp == stamp:
        c.smp = None
        d._enc_irq(c)


def _fail(d, c, reason):
    if c.smp is not None:
        c.smp = None
        d._link(c, "fail", reason)
        d._enc_irq(c)


def _configure(d, c, p):
    p.action, p.sc, p.auth = method(p.req, p.rsp, p.initiator)
    p.bonding = bool(p.req[2] & p.rsp[2] & _AUTH_BOND)
    if not p.sc and not (p.rsp[4] or p.rsp[5]):
        p.bonding = False  # legacy bonding needs some key distribution
    p.key_size = min(p.req[3], p.rsp[3])


def _pair_req(d, c, req):
    p = c.smp
    if c.master:
        d._link(c, "fail", ERR_CMD_NOT_SUPP)
        return
    if p is not None and p.state != "secreq":
        d._link(c, "fail", ERR_UNSPECIFIED)
        return
    if req[3] < 7 or req[3] > 16:
        d._link(c, "fail", ERR_ENC_KEY_SZ if req[3] < 7 else ERR_INVAL)
        c.smp = None
        return
    p = _start(d, c, False)
    p.req = req
    p.rsp = pair_cmd(d, req[4] & 7, req[5] & 7)
    _configure(d, c, p)
    # ble_sm_chk_repeat_pairing: a bonded peer pairs again -> MicroPython deletes the
    # old bond and answers BLE_GAP_REPEAT_PAIRING_RETRY, then NimBLE looks again.
    for _ in range(8):
        if d._read_sec(PEER_SEC, c.peer_id) is None:
            break
        d._delete_peer(c.peer_id)
    else:
        raise RuntimeError("store still returns the bond after deleting it: NimBLE would retry forever")
    d._link(c, "prsp", p.rsp)
    if not p.sc and p.action in (INPUT, DISP):
        _ask(d, c, p, 0)
    else:
        p.state = "wait"


def _pair_rsp(d, c, p, rsp):
    if not p.initiator or p.rsp is not None:
        return
    if rsp[3] < 7 or rsp[3] > 16:
        _fail(d, c, ERR_ENC_KEY_SZ if rsp[3] < 7 else ERR_INVAL)
        return
    _touch(d, c, p)
    p.rsp = rsp
    _configure(d, c, p)
    if p.sc:
        p.state = "wait"
        p.priv = os.urandom(32)
        p.pk = crypto.cmac(bytes(16), p.priv) + crypto.cmac(b"\x01" * 16, p.priv)
        d._link(c, "pk", p.pk)
    elif p.action in (INPUT, DISP):
        _ask(d, c, p, 0)
    else:
        p.state = "ready"
        _advance(d, c, p)


def _ask(d, c, p, number):
    """Hand the app a passkey action (_IRQ_PASSKEY_ACTION) and wait for gap_passkey.
    MicroPython handles BLE_GAP_EVENT_PASSKEY_ACTION only in the callback of links where
    it is the peripheral (central_gap_event_cb); a central's falls through to
    commmon_gap_event_cb, which drops it: the procedure waits for the 30 s SMP timeout
    unless the app injects blind (ble_sm_inject_io needs no event)."""
    p.state = "io"
    if not c.master:
        d._irq_passkey(c, p.action, number)


def _tk(p):
    return bytes(16) if p.io is True or not p.io else p.io.to_bytes(16, "big")


def _addrs(d, c, p):
    """(iat, ia, rat, ra) over-the-air addresses of initiator and responder."""
    us, them = c.our_ota, c.peer_ota
    if p.initiator:
        return us[0], us[1], them[0], them[1]
    return them[0], them[1], us[0], us[1]


def _advance(d, c, p):
    """Our IO is known (or not needed): do what was waiting for it."""
    if p.state == "io":
        p.state = "ready"
    if not p.sc:
        if p.initiator and p.state == "ready":
            p.state = "conf_sent"
            p.nonce = os.urandom(16)
            d._link(c, "conf", _c1(d, c, p, p.nonce))
        elif not p.initiator and p.pending is not None:
            pend, p.pending = p.pending, None
            _step(d, c, p, pend[0], pend[1])
        return
    if p.action in (INPUT, DISP):
        if p.initiator and p.state == "ready":
            _sc_passkey_confirms(d, c, p)
        elif p.pending is not None:
            pend, p.pending = p.pending, None
            _step(d, c, p, pend[0], pend[1])
    elif p.action == NUMCMP:
        if p.initiator:
            _send_check(d, c, p)
        elif p.pending is not None:
            pend, p.pending = p.pending, None
            _step(d, c, p, pend[0], pend[1])


def _c1(d, c, p, r):
    iat, ia, rat, ra = _addrs(d, c, p)
    return crypto.c1(_tk(p), r, _cmd_bytes(1, p.req), _cmd_bytes(2, p.rsp), iat, ia, rat, ra)


def _step(d, c, p, op, a):
    if not p.sc:
        _legacy(d, c, p, op, a)
    else:
        _secure(d, c, p, op, a)


def _legacy(d, c, p, op, a):
    if op == "conf":
        p.peer_conf = a[0]
        if p.initiator:
            d._link(c, "rand", p.nonce)
        elif p.io is None and p.action != NONE:
            p.pending = (op, a)  # ADVANCE_ON_IO: answer once our passkey is in
        else:
            p.nonce = os.urandom(16)
            d._link(c, "conf", _c1(d, c, p, p.nonce))
    elif op == "rand":
        if _c1(d, c, p, a[0]) != p.peer_conf:
            _fail(d, c, ERR_CONFIRM)
            return
        if p.initiator:
            p.stk = crypto.s1(_tk(p), a[0], p.nonce)
            p.state = "enc"
            d._link(c, "enc", 0, 0, fingerprint(p.stk))
        else:
            p.stk = crypto.s1(_tk(p), p.nonce, a[0])
            p.state = "ltk_start"
            d._link(c, "rand", p.nonce)
    elif op == "keys":
        _keys_in(d, c, p, a)


def _secure(d, c, p, op, a):
    if op == "pk":
        p.peer_pk = a[0]
        if not p.initiator:
            p.priv = os.urandom(32)
            p.pk = crypto.cmac(bytes(16), p.priv) + crypto.cmac(b"\x01" * 16, p.priv)
            d._link(c, "pk", p.pk)
        lo, hi = (p.pk, p.peer_pk) if p.pk < p.peer_pk else (p.peer_pk, p.pk)
        p.dhkey = crypto.cmac(b"blesim-ecdh-sim!", lo + hi) * 2  # simulated ECDH, see module doc
        p.pkax, p.pkbx = (p.pk, p.peer_pk) if p.initiator else (p.peer_pk, p.pk)
        if p.action in (INPUT, DISP):
            _ask(d, c, p, 0)  # the passkey action comes with the confirm step in LE SC
        elif not p.initiator:
            p.nonce = os.urandom(16)
            d._link(c, "conf", crypto.f4(p.pkbx, p.pkax, p.nonce, 0))
    elif op == "conf":
        p.peer_conf = a[0]
        if p.action in (INPUT, DISP):
            if p.initiator:
                d._link(c, "rand", p.nonces)
            elif p.io is None:
                p.pending = (op, a)
            else:
                _sc_passkey_confirms(d, c, p)
        else:
            p.nonce = os.urandom(16)
            d._link(c, "rand", p.nonce)
    elif op == "rand":
        if p.action in (INPUT, DISP):
            _sc_passkey_rand(d, c, p, a[0])
            return
        if p.initiator:
            if crypto.f4(p.pkbx, p.pkax, a[0], 0) != p.peer_conf:
                _fail(d, c, ERR_CONFIRM)
                return
            p.na, p.nb = p.nonce, a[0]
        else:
            p.na, p.nb = a[0], p.nonce
            d._link(c, "rand", p.nonce)
        if p.action == NUMCMP:
            _ask(d, c, p, crypto.g2(p.pkax, p.pkbx, p.na, p.nb) % 1000000)
        elif p.initiator:
            _send_check(d, c, p)
    elif op == "chk":
        if not p.initiator and p.action == NUMCMP and p.io is None:
            p.pending = (op, a)
            return
        _check_in(d, c, p, a[0])
    elif op == "keys":
        _keys_in(d, c, p, a)


def _sc_passkey_confirms(d, c, p):
    """All 20 passkey-bit commitments of one side (Vol 3 Part H 2.3.5.6.3), batched."""
    p.nonces = [os.urandom(16) for _ in range(20)]
    us, them = (p.pkax, p.pkbx) if p.initiator else (p.pkbx, p.pkax)
    confs = [crypto.f4(us, them, p.nonces[i], 0x80 | ((p.io >> i) & 1)) for i in range(20)]
    d._link(c, "conf", confs)
    p.state = "conf_sent"


def _sc_passkey_rand(d, c, p, nonces):
    them, us = (p.pkbx, p.pkax) if p.initiator else (p.pkax, p.pkbx)
    for i in range(20):
        if crypto.f4(them, us, nonces[i], 0x80 | ((p.io >> i) & 1)) != p.peer_conf[i]:
            _fail(d, c, ERR_CONFIRM)
            return
    if p.initiator:
        p.na, p.nb = p.nonces[19], nonces[19]
        _send_check(d, c, p)
    else:
        p.na, p.nb = nonces[19], p.nonces[19]
        d._link(c, "rand", p.nonces)


def _sc_values(d, c, p):
    iat, ia, rat, ra = _addrs(d, c, p)
    a1, a2 = bytes((iat,)) + ia, bytes((rat,)) + ra
    mackey, ltk = crypto.f5(p.dhkey, p.na, p.nb, a1, a2)
    r = p.io.to_bytes(16, "big") if p.action in (INPUT, DISP) else bytes(16)
    ioa = bytes((p.req[2], p.req[1], p.req[0]))
    iob = bytes((p.rsp[2], p.rsp[1], p.rsp[0]))
    ea = crypto.f6(mackey, p.na, p.nb, r, ioa, a1, a2)
    eb = crypto.f6(mackey, p.nb, p.na, r, iob, a2, a1)
    return ltk, ea, eb


def _send_check(d, c, p):
    p.ltk, ea, p.eb = _sc_values(d, c, p)
    d._link(c, "chk", ea)


def _check_in(d, c, p, e):
    if p.initiator:
        if e != p.eb:
            _fail(d, c, ERR_DHKEY)
            return
        p.state = "enc"
        d._link(c, "enc", 0, 0, fingerprint(p.ltk))
    else:
        p.ltk, ea, eb = _sc_values(d, c, p)
        if e != ea:
            _fail(d, c, ERR_DHKEY)
            return
        p.state = "ltk_start"
        d._link(c, "chk", eb)


# -- encryption (link layer) and key distribution ---------------------------------------


def _enc_req(d, c, ediv, rand, fp):
    """The peripheral's side of LL encryption start (ble_sm_ltk_req_rx)."""
    p = c.smp
    if p is not None and p.state == "ltk_start":
        key = p.stk if not p.sc else p.ltk
        if fingerprint(key) != fp:
            d._link(c, "encrsp", False)
            return
        set_state(c, True, False, False, p.key_size)
        p.state = "keys"
        d._link(c, "encrsp", True, _keys_out(d, c, p, p.rsp[5]))
        return
    if p is not None and p.state != "secreq":
        d._link(c, "encrsp", False)  # unexpected request: nack and forget
        return
    # restore: look the LTK up by the peer's identity (MicroPython ignores ediv/rand)
    sec = d._read_sec(OUR_SEC, c.peer_id)
    if sec is None:
        c.smp = None
        d._link(c, "encrsp", False)  # negative reply; the central sees PIN/key missing
        return
    p = _start(d, c, False)
    p.state = "restore"
    if fingerprint(ltk_bytes(sec)) != fp:
        # the two ends derive different session keys: MIC failure, link lost (0x3D)
        d._link(c, "mic")
        d._drop(c, 0x3D)
        return
    c.smp = None
    set_state(c, True, sec.authenticated, True, sec.key_size)
    d._link(c, "encrsp", True, None)
    d._enc_irq(c)
    cccd.bonding_restored(d, c)  # ble_gap_enc_event, security restored


def _enc_rsp(d, c, a):
    p = c.smp
    if p is None:
        return
    if not a[0]:
        c.smp = None
        d._enc_irq(c)
        return
    if p.state == "restore":
        c.smp = None
        set_state(c, True, p.auth, True, p.key_size)
        d._enc_irq(c)
        cccd.bonding_restored(d, c)
        return
    set_state(c, True, False, False, p.key_size)
    if a[1]:
        _store_peer_keys(p, a[1])
    d._link(c, "keys", _keys_out(d, c, p, p.rsp[4]))
    _done(d, c, p)


def _keys_in(d, c, p, a):
    if a[0]:
        _store_peer_keys(p, a[0])
    _done(d, c, p)


def _keys_out(d, c, p, dist):
    """The keys this side distributes (ble_sm_key_exch_exec) as a wire list."""
    s = Sec()
    if p.sc:
        s.ltk = p.ltk
    elif dist & _DIST_ENC:
        s.ltk = os.urandom(16)
        s.ediv = int.from_bytes(os.urandom(2), "little")
        s.rand = int.from_bytes(os.urandom(8), "little")
    s.key_size = p.key_size
    idt, ida = 0, bytes(6)
    if dist & _DIST_ID:
        s.irk = d.own_irk()
        idt, ida = c.our_id
    if dist & _DIST_SIGN:
        s.csrk = os.urandom(16)
    p.our = s
    if p.sc:
        return [None, None, None, s.irk, idt if s.irk else None, ida, s.csrk]
    return [s.ltk, s.ediv, s.rand, s.irk, idt if s.irk else None, ida, s.csrk]


def _store_peer_keys(p, k):
    s = Sec()
    s.ltk, s.ediv, s.rand, s.irk = k[0], k[1] or 0, k[2] or 0, k[3]
    s.csrk = k[6]
    s.key_size = p.key_size
    if k[4] is not None:
        p.peer_id = (k[4], k[5])
    p.peer = s


def _done(d, c, p):
    """Pairing complete: _IRQ_ENCRYPTION_UPDATE and the persisted keys. Upstream NimBLE
    (MicroPython's pin: stm32, unix, rp2) raises the enc event first and then persists
    (ble_sm_process_result); every esp-nimble IDF branch (ESP32) persists first. The
    device's `keys_first` (default: the 88-byte esp-nimble layout) picks the order."""
    c.smp = None
    if p.sc:
        if p.peer is None:
            p.peer = Sec()
        p.peer.ltk = p.ltk
        if p.our is None:
            p.our = Sec()
        p.our.ltk = p.ltk
    set_state(c, True, p.auth, p.bonding, p.key_size)
    if not d.keys_first:
        d._enc_irq(c)
        if p.bonding:  # ble_gap_enc_event, then ble_sm_persist_keys
            cccd.bonding_established(d, c)
    if p.bonding:
        _persist(d, c, p)
    if d.keys_first:
        d._enc_irq(c)
        if p.bonding:
            cccd.bonding_established(d, c)


def _persist(d, c, p):
    if p.peer_id is not None:
        c.peer_id = p.peer_id
    t, a = c.peer_id
    # ble_sm_persist_keys writes both records, whatever keys they hold
    if p.our is None:
        p.our = Sec()
    if p.peer is None:
        p.peer = Sec()
    for sec in (p.our, p.peer):
        sec.addr_type, sec.addr = t, a
        sec.authenticated, sec.sc = p.auth, p.sc
        sec.key_size = p.key_size
    for kind, sec in ((OUR_SEC, p.our), (PEER_SEC, p.peer)):
        if d._write_sec(kind, sec) and kind == PEER_SEC and sec.irk is not None:
            d.rl_add(t, a, sec.irk)  # ble_store_write_peer_sec -> ble_hs_pvcy_add_entry


def store_key(t, a):
    return sec_key(t, a)
