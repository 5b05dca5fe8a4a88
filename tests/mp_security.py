# MicroPython tests of aioble_pm.security (run by conftest.py on the unix port).
import gc
import time
from mptest import raises, eq
from aioble_pm import security
from aioble_pm.security import (
    SecParams,
    SecurityError,
    RepeatedAttempts,
    pairing_method,
    KEY_ENC,
    KEY_ID,
    KEY_SIGN,
    KEY_LINK,
)

DO, DYN, KO, NIO, KD = 0, 1, 2, 3, 4  # IO capabilities, spec numbering

# ---------------------------------------------------------------- SecParams


def test_io_constants_match_spec():
    eq(security.IO_DISPLAY_ONLY, 0)
    eq(security.IO_DISPLAY_YESNO, 1)
    eq(security.IO_KEYBOARD_ONLY, 2)
    eq(security.IO_NO_INPUT_OUTPUT, 3)
    eq(security.IO_KEYBOARD_DISPLAY, 4)
    eq((KEY_ENC, KEY_ID, KEY_SIGN, KEY_LINK), (1, 2, 4, 8))


def test_defaults():
    p = SecParams()
    eq((p.bond, p.mitm, p.lesc, p.keypress, p.io, p.oob), (True, False, True, False, NIO, False))
    eq((p.min_key_size, p.max_key_size, p.sc_only), (7, 16, False))
    eq((p.kdist_own, p.kdist_peer), (KEY_ENC | KEY_ID, KEY_ENC | KEY_ID))
    q = SecParams(bond=False)
    eq((q.kdist_own, q.kdist_peer), (0, 0))


def test_to_config_has_only_binding_keys():
    eq(SecParams().to_config(), {"bond": True, "mitm": False, "io": 3, "le_secure": True})
    p = SecParams(bond=False, mitm=True, lesc=False, io=KD)
    eq(p.to_config(), {"bond": False, "mitm": True, "io": 4, "le_secure": False})


def ok(**kw):
    return SecParams(**kw)


def bad(match, **kw):
    with raises(ValueError, match):
        SecParams(**kw)


def test_rule_oob_requires_mitm():
    bad("oob requires mitm", oob=True, mitm=False)
    bad("oob requires mitm", oob=True, mitm=False, io=KD)
    ok(oob=True, mitm=True)  # other side of the rule (oob also satisfies the mitm rule)
    ok(oob=False, mitm=False)


def test_rule_io_range():
    for io in range(5):
        eq(ok(io=io).io, io)
    bad("io must be 0..4", io=5)
    bad("io must be 0..4", io=-1)
    bad("io must be 0..4", io=255)


def test_rule_mitm_requires_io_or_oob():
    bad("mitm requires io or oob", mitm=True)  # default io is NoInputNoOutput
    bad("mitm requires io or oob", mitm=True, io=NIO, oob=False)
    for io in (DO, DYN, KO, KD):
        ok(mitm=True, io=io)
    ok(mitm=True, io=NIO, oob=True)
    ok(mitm=False, io=NIO)


def test_rule_min_not_above_max():
    bad("min_key_size 10 > max_key_size 9", min_key_size=10, max_key_size=9)
    bad("min_key_size 16 > max_key_size 7", min_key_size=16, max_key_size=7)
    ok(min_key_size=10, max_key_size=10)
    ok(min_key_size=7, max_key_size=7)
    ok(min_key_size=16, max_key_size=16)


def test_rule_min_at_least_7():
    bad("min_key_size must be >= 7", min_key_size=6)
    bad("min_key_size must be >= 7", min_key_size=0)
    bad("min_key_size must be >= 7", min_key_size=-3)
    eq(ok(min_key_size=7).min_key_size, 7)


def test_rule_max_at_most_16():
    bad("max_key_size must be <= 16", max_key_size=17)
    bad("max_key_size must be <= 16", min_key_size=16, max_key_size=255)
    eq(ok(max_key_size=16).max_key_size, 16)


def test_rule_no_bond_no_enc_id_keys():
    msg = "bond=False distributes no keys"
    bad(msg, bond=False, kdist_own=KEY_ENC)
    bad(msg, bond=False, kdist_own=KEY_ID)
    bad(msg, bond=False, kdist_peer=KEY_ENC)
    bad(msg, bond=False, kdist_peer=KEY_ID | KEY_SIGN)
    ok(bond=False, kdist_own=0, kdist_peer=0)
    ok(bond=False, kdist_own=KEY_SIGN, kdist_peer=KEY_LINK)  # only ENC/ID count


def test_rule_bond_needs_enc_or_id_keys():
    msg = "bond=True needs keys"
    bad(msg, bond=True, kdist_own=0, kdist_peer=0)
    bad(msg, bond=True, kdist_own=KEY_SIGN, kdist_peer=KEY_SIGN | KEY_LINK)
    ok(bond=True, kdist_own=0, kdist_peer=KEY_ID)
    ok(bond=True, kdist_own=KEY_ENC, kdist_peer=0)


def test_rule_kdist_reserved_bits():
    ok(kdist_own=15, kdist_peer=15)
    bad("kdist_own must be KEY_* bits", kdist_own=16)
    bad("kdist_peer must be KEY_* bits", kdist_peer=-1)


def test_rule_sc_only_requires_lesc():
    bad("sc_only requires lesc", sc_only=True, lesc=False)
    ok(sc_only=True, lesc=True)
    ok(sc_only=False, lesc=False)


def test_bad_types_name_the_argument():
    for name in ("bond", "mitm", "lesc", "keypress", "oob", "sc_only"):
        with raises(TypeError, name):
            SecParams(**{name: "yes"})
        with raises(TypeError, name):
            SecParams(**{name: None})
        with raises(ValueError, name):
            SecParams(**{name: 2})
    for name in ("io", "min_key_size", "max_key_size", "kdist_own", "kdist_peer"):
        with raises(TypeError, name):
            SecParams(**{name: "3"})
        with raises(TypeError, name):
            SecParams(**{name: 3.0})
        with raises(TypeError, name):
            SecParams(**{name: True})
    # 1/0 are accepted for flags and stored as bools
    eq(SecParams(bond=1, mitm=0).bond, True)


def test_repr():
    r = repr(SecParams(mitm=True, io=KD))
    assert r.startswith("<SecParams"), r
    assert "mitm=1" in r and "io=4" in r, r


def test_shortfall():
    p = SecParams(min_key_size=12)
    eq(p.shortfall(True, 16), None)
    eq(p.shortfall(False, 12), None)  # mitm not required
    e = p.shortfall(True, 11)
    eq(e.reason, SecurityError.KEY_SIZE)
    assert "11" in str(e) and "12" in str(e), str(e)
    m = SecParams(mitm=True, io=DYN)
    eq(m.shortfall(False, 16).reason, SecurityError.NOT_AUTHENTICATED)
    eq(m.shortfall(True, 16), None)
    s = SecParams(sc_only=True)
    eq(s.shortfall(False, 16, sc=False).reason, SecurityError.NOT_SC)
    eq(s.shortfall(False, 16, sc=True), None)
    eq(s.shortfall(False, 16), None)  # sc unknown: not judged
    eq(SecParams().shortfall(False, 16, sc=False), None)


def test_security_error():
    names = (
        "TIMEOUT", "REJECTED", "KEY_MISSING", "KEY_SIZE", "NOT_AUTHENTICATED", "NOT_SC",
        "REPEATED_ATTEMPTS", "STORAGE_FULL", "PASSKEY", "NUMCMP", "DISCONNECTED",
    )
    values = [getattr(SecurityError, n) for n in names]
    eq(len(set(values)), len(names), "reasons are distinct")
    try:
        raise SecurityError(SecurityError.TIMEOUT, "no answer in 20000 ms")
    except Exception as e:
        assert isinstance(e, SecurityError)
        eq(e.reason, SecurityError.TIMEOUT)
        eq(str(e), "timeout: no answer in 20000 ms")
    eq(str(SecurityError(SecurityError.REJECTED)), "rejected")


# ---------------------------------------------------------------- pairing method
# Core Vol 3 Part H Table 2.8, written out here on its own (rows: responder IO,
# columns: initiator IO). JW Just Works, NC numeric comparison, "IiRd" initiator
# inputs / responder displays the passkey, "IdRi" the other way, "IiRi" both input.
LEGACY = (
    # init: DO      DYN     KO      NIO   KD
    ("JW", "JW", "IiRd", "JW", "IiRd"),  # resp DisplayOnly
    ("JW", "JW", "IiRd", "JW", "IiRd"),  # resp DisplayYesNo
    ("IdRi", "IdRi", "IiRi", "JW", "IdRi"),  # resp KeyboardOnly
    ("JW", "JW", "JW", "JW", "JW"),  # resp NoInputNoOutput
    ("IdRi", "IdRi", "IiRd", "JW", "IdRi"),  # resp KeyboardDisplay
)
SC = (
    ("JW", "JW", "IiRd", "JW", "IiRd"),
    ("JW", "NC", "IiRd", "JW", "NC"),
    ("IdRi", "IdRi", "IiRi", "JW", "IdRi"),
    ("JW", "JW", "JW", "JW", "JW"),
    ("IdRi", "NC", "IiRd", "JW", "NC"),
)
EXPECT = {
    "JW": (security.JUST_WORKS, 0, 0),
    "NC": (security.NUMERIC_COMPARISON, 4, 4),
    "IiRd": (security.PASSKEY, 2, 3),  # MicroPython actions: INPUT 2, DISPLAY 3
    "IdRi": (security.PASSKEY, 3, 2),
    "IiRi": (security.PASSKEY, 2, 2),
}
MITM = ((True, False), (False, True), (True, True))


def test_action_constants_match_micropython():
    eq((security.ACTION_NONE, security.ACTION_INPUT, security.ACTION_DISPLAY), (0, 2, 3))
    eq(security.ACTION_NUMERIC_COMPARISON, 4)


def test_method_table_legacy_and_sc():
    for sc, table in ((False, LEGACY), (True, SC)):
        for resp in range(5):
            for init in range(5):
                want = EXPECT[table[resp][init]]
                for im, rm in MITM:
                    got = pairing_method(init, resp, im, rm, sc)
                    eq(got, want, "sc=%s init=%d resp=%d mitm=%s/%s" % (sc, init, resp, im, rm))
                # neither side wants MITM protection: always Just Works
                eq(pairing_method(init, resp, False, False, sc), EXPECT["JW"])


def test_oob_rules():
    OOB, JW = security.OOB, security.JUST_WORKS
    for init in range(5):
        for resp in range(5):
            # legacy: both OOB flags -> OOB, even without MITM
            eq(pairing_method(init, resp, False, False, False, True, True), (OOB, 1, 1))
            # legacy: one flag is not enough; the usual rules apply
            eq(pairing_method(init, resp, True, False, False, True, False), EXPECT[LEGACY[resp][init]])
            eq(pairing_method(init, resp, False, False, False, False, True)[0], JW)
            # LE SC: either side's flag -> OOB
            eq(pairing_method(init, resp, False, False, True, True, False), (OOB, 5, 5))
            eq(pairing_method(init, resp, True, True, True, False, True), (OOB, 5, 5))


def test_authenticated():
    assert not security.authenticated(security.JUST_WORKS)
    assert security.authenticated(security.PASSKEY)
    assert security.authenticated(security.NUMERIC_COMPARISON)
    assert security.authenticated(security.OOB)
    with raises(ValueError, "method"):
        security.authenticated(9)
    with raises(TypeError, "method"):
        security.authenticated("PASSKEY")


def test_pairing_method_bad_input():
    with raises(ValueError, "init_io"):
        pairing_method(5, 0, True, True, True)
    with raises(ValueError, "resp_io"):
        pairing_method(0, -1, True, True, True)
    with raises(TypeError, "init_io"):
        pairing_method("0", 0, True, True, True)
    with raises(TypeError, "resp_mitm"):
        pairing_method(0, 0, True, None, True)
    with raises(TypeError, "sc"):
        pairing_method(0, 0, True, True, "yes")
    with raises(ValueError, "init_oob"):
        pairing_method(0, 0, True, True, True, 2)


# ---------------------------------------------------------------- passkeys


def test_new_passkey_range():
    for _ in range(3000):
        n = security.new_passkey()
        assert type(n) is int and 0 <= n <= 999999, n


def feed(*chunks):
    it = iter(chunks)
    return lambda n: next(it)


def test_new_passkey_rejects_instead_of_folding():
    # 0x0fffff = 1048575 and 0x0f4240 = 1000000 are out of range and must be redrawn
    # (a modulo would have turned them into 48575 and 0); the top 4 bits are unused.
    eq(security.new_passkey(feed(b"\x0f\xff\xff", b"\x0f\x42\x40", b"\xf0\x00\x07")), 7)
    eq(security.new_passkey(feed(b"\xff\x42\x3f")), 999999)
    eq(security.new_passkey(feed(b"\x00\x00\x00")), 0)


def test_new_passkey_roughly_uniform():
    # Bounds are > 10 standard deviations wide: a correct generator never trips them,
    # a modulo-biased one (0..48575 twice as likely) always does.
    n = 20000
    buckets = [0] * 10
    low = 0
    for _ in range(n):
        k = security.new_passkey()
        buckets[k // 100000] += 1
        if k < 48576:
            low += 1
    for b in buckets:
        assert 1600 < b < 2400, buckets  # expect 2000, sd ~42
    assert 650 < low < 1300, low  # expect 971, sd ~30; modulo bias would give ~1855


# ---------------------------------------------------------------- repeated attempts


class Clock:
    def __init__(self, start=0):
        self.t = start

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t = time.ticks_add(self.t, ms)


A = b"\x01\xc0\x11\x22\x33\x44\x55"
B = b"\x00\x11\x22\x33\x44\x55\x66"


def test_ra_first_wait_then_allowed():
    c = Clock()
    ra = RepeatedAttempts(c)
    eq(ra.check(A), 0)
    eq(ra.failed(A), 4000)
    eq(ra.check(A), 4000)
    eq(ra.check(B), 0)  # other peers are not affected
    c.advance(1000)
    eq(ra.check(A), 3000)
    c.advance(2999)
    eq(ra.check(A), 1)
    c.advance(1)
    eq(ra.check(A), 0)


def test_ra_doubles_up_to_max():
    c = Clock()
    ra = RepeatedAttempts(c)
    waits = []
    for _ in range(7):
        w = ra.failed(A)
        waits.append(w)
        eq(ra.check(A), w)
        c.advance(w + 500)  # retry just after the wait: another failure
        eq(ra.check(A), 0)
    eq(waits, [4000, 8000, 16000, 32000, 64000, 64000, 64000])


def test_ra_failure_while_waiting_doubles():
    c = Clock()
    ra = RepeatedAttempts(c)
    ra.failed(A)
    c.advance(100)
    eq(ra.failed(A), 8000)
    eq(ra.check(A), 8000)


def test_ra_reward_halves_the_next_wait():
    c = Clock()
    ra = RepeatedAttempts(c)
    for w in (4000, 8000, 16000, 32000):
        eq(ra.failed(A), w)
        c.advance(w)
    c.advance(9999)  # inside the first reward period after the 32 s wait
    eq(ra.failed(A), 64000)
    c.advance(64000 + 10000)  # one reward period: 64 s halves to 32 s, the failure doubles it
    eq(ra.failed(A), 64000)
    c.advance(64000 + 3 * 10000)  # three periods: 64 -> 8 s, doubled
    eq(ra.failed(A), 16000)
    c.advance(16000 + 2 * 10000)  # two periods: 16 -> 4 s, doubled
    eq(ra.failed(A), 8000)
    c.advance(8000 + 2 * 10000)  # would drop below 4 s: forgotten, starts over
    eq(ra.check(A), 0)
    eq(len(ra), 0)
    eq(ra.failed(A), 4000)


def test_ra_forgets_after_full_reward():
    c = Clock()
    ra = RepeatedAttempts(c)
    ra.failed(A)
    eq(len(ra), 1)
    c.advance(4000 + 9999)
    eq(ra.check(A), 0)
    eq(len(ra), 1)  # still remembered: a failure now would double
    c.advance(1)
    eq(ra.check(A), 0)
    eq(len(ra), 0)
    eq(ra.failed(A), 4000)  # starts over


def test_ra_succeeded_forgets():
    c = Clock()
    ra = RepeatedAttempts(c)
    ra.failed(A)
    ra.failed(A)
    ra.failed(B)
    ra.succeeded(A)
    eq(ra.check(A), 0)
    eq(ra.check(B), 4000)
    eq(ra.failed(A), 4000)
    ra.succeeded(b"\x09")  # unknown peer: nothing to forget


def test_ra_lru_reuses_oldest_slot():
    c = Clock()
    ra = RepeatedAttempts(c)
    peers = [bytes([1, i, 2, 3, 4, 5, 6]) for i in range(9)]
    for p in peers[:8]:
        ra.failed(p)
        c.advance(100)
    eq(len(ra), 8)
    ra.failed(peers[8])
    eq(len(ra), 8)
    eq(ra.check(peers[0]), 0)  # the oldest failure made room
    eq(ra.check(peers[1]), 4000 - 700)  # failed at t=100, now t=800
    eq(ra.check(peers[8]), 4000)
    ra.failed(peers[0])  # comes back: now peers[1] is the oldest
    eq(ra.check(peers[1]), 0)
    eq(ra.check(peers[2]), 4000 - 600)


def test_ra_across_ticks_wrap():
    c = Clock(time.ticks_add(0, -1500))
    ra = RepeatedAttempts(c)
    eq(ra.failed(A), 4000)
    c.advance(3000)  # the tick counter wraps through 0 here
    eq(c.t, 1500)
    eq(ra.check(A), 1000)
    eq(ra.failed(A), 8000)
    c.advance(8000)
    eq(ra.check(A), 0)


def test_ra_ancient_entry_is_forgotten():
    c = Clock(12345)
    ra = RepeatedAttempts(c)
    ra.failed(A)
    period = time.ticks_add(0, -1) + 1
    q = period // 4
    c.advance(q)
    c.advance(q + 10)  # more than half a period later: ticks_diff turns negative
    eq(ra.check(A), 0)
    eq(len(ra), 0)


def test_ra_params_and_bad_input():
    c = Clock()
    ra = RepeatedAttempts(c, peers=2, min_wait=100, max_wait=250, reward=50)
    eq([ra.failed(A) for _ in range(4)], [100, 200, 250, 250])
    with raises(TypeError, "peer"):
        ra.check("A")
    with raises(ValueError, "peer"):
        ra.failed(b"")
    with raises(ValueError, "peer"):
        ra.failed(bytes(17))
    with raises(ValueError, "peers"):
        RepeatedAttempts(c, peers=0)
    with raises(ValueError, "max_wait"):
        RepeatedAttempts(c, min_wait=10, max_wait=5)
    with raises(TypeError, "reward"):
        RepeatedAttempts(c, reward=1.5)
    assert "2 peers" in repr(ra) or "/2" in repr(ra), repr(ra)
    ra.failed(memoryview(bytearray(B)))  # any bytes-like key
    eq(ra.check(B), 100)


def test_ra_memory_is_bounded():
    c = Clock()
    ra = RepeatedAttempts(c)
    key = bytearray(7)
    for i in range(50):  # warm up
        key[1] = i
        ra.failed(key)
    gc.collect()
    before = gc.mem_alloc()
    for i in range(2000):
        key[1] = i & 0xFF
        key[2] = i >> 8
        ra.failed(key)
        ra.check(key)
        c.advance(7)
    gc.collect()
    grew = gc.mem_alloc() - before
    eq(len(ra), 8)
    assert grew < 256, grew


def test_central_needs_io():
    from aioble_pm.security import central_needs_io

    for io in range(5):
        eq(central_needs_io(io, False, True), False, "no mitm: Just Works is acceptable")
    for io in (0, 1, 2, 4):
        eq(central_needs_io(io, True, True), True, "mitm: the central displays, types or compares")
        eq(central_needs_io(io, True, False), True, "legacy too")
    eq(central_needs_io(3, True, True), False, "NoInputNoOutput never gets an action")


def test_ra_tables_are_made_at_the_first_failure():
    c = Clock()
    gc.collect()
    before = gc.mem_alloc()
    ra = RepeatedAttempts(c, peers=64)
    eq(ra.check(A), 0)
    ra.succeeded(A)
    eq(len(ra), 0)
    gc.collect()
    assert gc.mem_alloc() - before < 64 * 17, "no per-peer tables before a failure"
    with raises(TypeError, "bytes-like"):
        ra.check("peer")  # input is checked with or without tables
    eq(ra.failed(A), 4000)
    eq((ra.check(A), ra.check(B), len(ra)), (4000, 0, 1))
    assert "1/64" in repr(ra)
