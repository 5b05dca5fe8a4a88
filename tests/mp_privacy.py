# MicroPython tests of aioble_pm.privacy (run by conftest.py on the unix port).
import os
from mptest import raises, eq, hexb, heapsize
from aioble_pm import privacy
from privacy_ref import random_kind_ref, resolve_ref
from aioble_pm.privacy import KIND_PUBLIC, KIND_STATIC, KIND_RPA, KIND_NRPA, KIND_INVALID

# Core spec Vol 3 Part H App. D.7 sample (also Linux smp.c selftest), MSB-first.
SPEC_IRK = hexb("ec0234a357c8ad05341010a60a397d9b")
SPEC_PRAND = hexb("708194")
SPEC_HASH = hexb("0dfbaa")
SPEC_RPA = hexb("70:81:94:0D:FB:AA")


def test_ah_spec_sample():
    eq(privacy.ah(SPEC_IRK, SPEC_PRAND), SPEC_HASH)
    eq(privacy.ah(bytearray(SPEC_IRK), memoryview(SPEC_PRAND)), SPEC_HASH)


def test_resolve_spec_sample():
    assert privacy.resolve(SPEC_IRK, SPEC_RPA)
    assert privacy.is_rpa(1, SPEC_RPA)
    other = bytearray(SPEC_IRK)
    other[0] ^= 1
    assert not privacy.resolve(bytes(other), SPEC_RPA)
    flipped = bytearray(SPEC_RPA)
    flipped[5] ^= 0x80
    assert not privacy.resolve(SPEC_IRK, flipped)


def test_kinds():
    eq(privacy.kind(0, hexb("000000000000")), KIND_PUBLIC)  # public: any bits
    eq(privacy.kind(1, hexb("c01122334455")), KIND_STATIC)
    eq(privacy.kind(1, SPEC_RPA), KIND_RPA)
    eq(privacy.kind(1, hexb("001122334455")), KIND_NRPA)
    eq(privacy.kind(1, hexb("801122334455")), KIND_INVALID)  # reserved 0b10
    # random part all zeros / all ones
    eq(privacy.kind(1, hexb("c00000000000")), KIND_INVALID)
    eq(privacy.kind(1, hexb("ffffffffffff")), KIND_INVALID)
    eq(privacy.kind(1, hexb("000000000000")), KIND_INVALID)
    eq(privacy.kind(1, hexb("3fffffffffff")), KIND_INVALID)
    # an RPA's random part is prand's 22 bits only; the hash does not count
    eq(privacy.kind(1, hexb("400000123456")), KIND_INVALID)
    eq(privacy.kind(1, hexb("7fffff123456")), KIND_INVALID)
    eq(privacy.kind(1, hexb("400001000000")), KIND_RPA)
    eq(privacy.kind(1, hexb("7ffffe000000")), KIND_RPA)
    assert privacy.is_identity(0, hexb("112233445566"))
    assert privacy.is_identity(1, hexb("c01122334455"))
    assert not privacy.is_identity(1, SPEC_RPA)
    assert not privacy.is_rpa(0, SPEC_RPA)  # a public address is never an RPA


def test_kind_viper_matches_reference():
    edge = [0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xFE, 0xFF]
    samples = []
    for b0 in edge:
        for rest in (b"\x00" * 5, b"\xff" * 5, b"\x00\x00\x01\x00\x00", b"\xff\xff\xfe\xff\xff"):
            samples.append(bytes([b0]) + rest)
    for _ in range(2000):
        samples.append(os.urandom(6))
    for a in samples:
        eq(privacy.random_kind(a), random_kind_ref(a), a)


def test_rpa_generation():
    for _ in range(300):
        a = privacy.rpa(SPEC_IRK)
        eq(len(a), 6)
        eq(privacy.kind(1, a), KIND_RPA)
        assert privacy.resolve(SPEC_IRK, a)
    assert privacy.rpa(SPEC_IRK) != privacy.rpa(SPEC_IRK)


def test_bad_input_names_the_argument():
    with raises(ValueError, "irk"):
        privacy.ah(b"short", SPEC_PRAND)
    with raises(TypeError, "irk"):
        privacy.ah("ec0234a357c8ad05", SPEC_PRAND)
    with raises(ValueError, "prand"):
        privacy.ah(SPEC_IRK, b"\x01\x02")
    with raises(ValueError, "addr"):
        privacy.kind(1, b"\x01\x02\x03")
    with raises(TypeError, "addr"):
        privacy.kind(1, [1, 2, 3, 4, 5, 6])
    with raises(ValueError, "addr_type"):
        privacy.kind(2, SPEC_RPA)
    with raises(TypeError, "addr_type"):
        privacy.kind("1", SPEC_RPA)
    with raises(ValueError, "irk"):
        privacy.rpa(bytes(15))
    with raises(ValueError, "addr"):
        privacy.resolve(SPEC_IRK, SPEC_RPA + b"\x00")
    r = privacy.Resolver()
    with raises(ValueError, "irk"):
        r.add(1, bytes(17))
    with raises(ValueError, "addr_type"):
        r.resolve(5, SPEC_RPA)
    with raises(ValueError, "addr"):
        r.resolve(1, b"\x40\x00")
    with raises(TypeError, "addr"):
        r.resolve(1, None)
    with raises(TypeError, "addr"):
        r.resolve(1, [0x40, 1, 2, 3, 4, 5])
    with raises(TypeError, "addr"):
        r.resolve(1, "@ABCDE")
    with raises(KeyError):
        r.remove("nobody")
    with raises(ValueError, "hits"):
        privacy.Resolver(hits=-1)
    with raises(ValueError, "hits"):
        privacy.Resolver(misses=0x10000)


def _irks(n):
    return [os.urandom(16) for _ in range(n)]


def test_resolver_resolves_each_key():
    irks = _irks(40)
    r = privacy.Resolver()
    for i, irk in enumerate(irks):
        r.add(i, irk)
    eq(len(r), 40)
    for _ in range(3):  # second and third rounds are served from the caches
        for i, irk in enumerate(irks):
            eq(r.resolve(1, privacy.rpa(irk)), i)
    eq(r.resolve(1, privacy.rpa(os.urandom(16))), None)
    eq(r.resolve(0, privacy.rpa(irks[0])), None)  # public type: never resolved
    eq(r.resolve(1, hexb("c01122334455")), None)  # static
    eq(r.resolve(1, hexb("001122334455")), None)  # NRPA
    eq(r.resolve(1, memoryview(bytearray(SPEC_RPA))), None)
    r.add("spec", SPEC_IRK)
    eq(r.resolve(1, memoryview(bytearray(SPEC_RPA))), "spec")
    assert "spec" in r and 41 not in r
    assert "spec" not in repr(r) or "IRK" in repr(r)


def test_resolver_cache_hit_then_remove():
    a, b, c = _irks(3)
    r = privacy.Resolver(hits=4, misses=4)
    r.add("a", a)
    r.add("b", b)
    r.add("c", c)
    ra, rb, rc = privacy.rpa(a), privacy.rpa(b), privacy.rpa(c)
    eq(r.resolve(1, rc), "c")
    eq(r.resolve(1, rb), "b")
    eq(r.resolve(1, ra), "a")
    eq(r.resolve(1, rc), "c")  # cached hit, slot 2
    r.remove("a")  # slots of b and c shift down; their cached hits must follow
    eq(r.resolve(1, ra), None)
    eq(r.resolve(1, rb), "b")
    eq(r.resolve(1, rc), "c")
    r.remove("c")
    eq(r.resolve(1, rc), None)
    eq(r.resolve(1, rb), "b")


def test_resolver_add_invalidates_misses():
    irk = _irks(1)[0]
    r = privacy.Resolver(hits=2, misses=2)
    addr = privacy.rpa(irk)
    eq(r.resolve(1, addr), None)
    eq(r.resolve(1, addr), None)  # cached miss
    r.add(7, irk)
    eq(r.resolve(1, addr), 7)
    r.add(7, _irks(1)[0])  # replacing the IRK of a key drops its old hits
    eq(r.resolve(1, addr), None)
    r.add(8, irk)
    eq(r.resolve(1, addr), 8)
    r.clear()
    eq(len(r), 0)
    eq(r.resolve(1, addr), None)


def test_resolver_caches_bounded_and_disabled():
    irks = _irks(5)
    for hits, misses in ((0, 0), (1, 1), (3, 0), (0, 3)):
        r = privacy.Resolver(hits=hits, misses=misses)
        for i, irk in enumerate(irks):
            r.add(i, irk)
        for _ in range(3):
            for i, irk in enumerate(irks):
                eq(r.resolve(1, privacy.rpa(irk)), i)
                eq(r.resolve(1, privacy.rpa(os.urandom(16))), None)
        eq(len(r.tables()[0]), 8 + 8 * (hits + misses))


def IO():
    return [bytearray(16), bytearray(16)]


def _state(hits, misses):
    st = bytearray(8 + 8 * (hits + misses))
    st[0], st[1], st[2], st[3] = hits & 0xFF, hits >> 8, misses & 0xFF, misses >> 8
    return st


def test_resolve_viper_matches_reference():
    import cryptolib

    irks = _irks(6)
    aes = [cryptolib.aes(k, 1) for k in irks]
    for hits, misses in ((4, 4), (0, 3), (2, 0), (0, 0), (300, 2)):
        fast, ref = _state(hits, misses), _state(hits, misses)
        seen = []
        for step in range(400):
            pick = os.urandom(1)[0] % 5
            if pick == 0 and seen:  # repeat an earlier address (cache path)
                addr = seen[os.urandom(1)[0] % len(seen)]
            elif pick == 1:
                addr = privacy.rpa(irks[os.urandom(1)[0] % 6])
            elif pick == 2:
                addr = privacy.rpa(os.urandom(16))
            else:  # anything: static, NRPA, reserved, invalid RPAs
                addr = os.urandom(6)
            seen.append(addr)
            want = resolve_ref(ref, aes, [bytearray(16), bytearray(16)], addr)
            got = privacy.resolve_slot(fast, aes, [bytearray(16), bytearray(16)], addr)
            eq(got, want, "step %d" % step)
            eq(fast, ref, "state after step %d" % step)


def test_resolve_viper_edge_addresses():
    import cryptolib

    aes = [cryptolib.aes(k, 1) for k in _irks(2)]
    st = _state(2, 2)
    for addr in (b"\x40\x00\x00\x11\x22\x33", b"\x7f\xff\xff\x11\x22\x33"):
        eq(privacy.resolve_slot(st, aes, IO(), addr), -2)
        eq(resolve_ref(st, aes, IO(), addr), -2)
    eq(privacy.resolve_slot(st, aes, IO(), b"\x40\x00\x01\xff\xff\xff"), -1)


def test_viper_high_bit_values():
    # bytes and slots with the top bit set read back unsigned (32-bit boards, 64-bit unix)
    st = _state(3, 0)
    st[8:16] = b"\x7f\xfe\xfd\xfc\xfb\xfa\xfe\xff"  # cached hit with slot 0xFFFE
    eq(privacy.resolve_slot(st, [], IO(), b"\x7f\xfe\xfd\xfc\xfb\xfa"), 0xFFFE)
    st[8:16] = b"\x7f\xfe\xfd\xfc\xfb\xfa\xff\xff"  # cached miss
    eq(privacy.resolve_slot(st, [], IO(), b"\x7f\xfe\xfd\xfc\xfb\xfa"), -1)
    big = _state(0x8001, 0)  # ring positions above 0x7FFF
    big[4], big[5] = 0x00, 0x80
    import cryptolib

    irk = os.urandom(16)
    addr = privacy.rpa(irk)
    eq(privacy.resolve_slot(big, [cryptolib.aes(irk, 1)], IO(), addr), 0)
    o = 8 + 0x8000 * 8
    eq(bytes(big[o : o + 8]), addr + b"\x00\x00")
    eq((big[4], big[5]), (0, 0))  # ring wrapped at 0x8001 entries


@heapsize("96k")  # the module is compiled from source here; frozen it needs far less
def test_resolve_allocates_nothing():
    import gc

    irks = _irks(8)
    r = privacy.Resolver()
    for i, irk in enumerate(irks):
        r.add(i, irk)
    addrs = [privacy.rpa(irks[3]), privacy.rpa(os.urandom(16))]
    r.resolve(1, addrs[0])
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(200):
        r.resolve(1, addrs[0])  # hit
        r.resolve(1, addrs[1])  # miss (then cached miss)
    eq(gc.mem_alloc() - before, 0, "bytes allocated by 400 resolves")
