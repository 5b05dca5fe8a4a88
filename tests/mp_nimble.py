# MicroPython tests of aioble_pm.nimble (run by conftest.py on the unix port).
# Blobs are built by hand with struct.pack from the field tables of NimBLE's
# struct ble_store_value_sec (FACTS 3.2), not with any code of the module.
import os
import struct
from mptest import raises, eq, hexb
from aioble_pm import nimble, privacy

# Upstream mynewt-nimble, 80 bytes: peer_addr(type, val[6]) key_size ediv pad[6]
# rand_num ltk[16] ltk_present irk[16] irk_present csrk[16] flags(csrk_present,
# authenticated, sc) pad[5]
UPSTREAM = "<B6sBH6xQ16sB16sB16sB5x"
# esp-nimble 1.5, 88 bytes: peer_addr pad bond_count key_size pad ediv pad[2]
# rand_num ltk ltk_present irk irk_present csrk csrk_present pad sign_counter
# flags(authenticated, sc) pad[7]
ESP15 = "<B6sxHBxHxxQ16sB16sB16sBxIB7x"
# esp-nimble 1.4, 80 bytes: as 1.5 without sign_counter; flags share csrk's byte
ESP14 = "<B6sxHBxHxxQ16sB16sB16sB5x"

# Core spec sample IRK (MSB-first) and how NimBLE stores it (FACTS 4.1)
SPEC_IRK = hexb("ec0234a357c8ad05341010a60a397d9b")
SPEC_IRK_NIMBLE = hexb("9b7d390aa610103405adc857a33402ec")
SPEC_RPA = hexb("70:81:94:0D:FB:AA")

ADDR = hexb("c0:11:22:33:44:55")  # MSB-first, random static
ADDR_LSB = hexb("55 44 33 22 11 c0")
LTK = hexb("a1a2a3a4a5a6a7a8a9aaabacadaeafb0")
CSRK = hexb("c1c2c3c4c5c6c7c8c9cacbcccdcecfd0")
RAND = 0x8877665544332211
EDIV = 0xBEEF


def upstream(addr_type=1, addr=ADDR_LSB, key_size=16, ediv=EDIV, ltk=True, irk=SPEC_IRK_NIMBLE,
             irk_present=True, csrk=True, auth=False, sc=False):
    flags = (1 if csrk else 0) | (2 if auth else 0) | (4 if sc else 0)
    return struct.pack(UPSTREAM, addr_type, addr, key_size, ediv, RAND, LTK, int(ltk),
                       irk, int(irk_present), CSRK, flags)


def esp15(addr_type=1, addr=ADDR_LSB, key_size=16, ediv=EDIV, ltk=True, irk=SPEC_IRK_NIMBLE,
          irk_present=True, csrk=True, auth=False, sc=False, bond_count=3, sign_counter=0x01020304):
    flags = (1 if auth else 0) | (2 if sc else 0)
    return struct.pack(ESP15, addr_type, addr, bond_count, key_size, ediv, RAND, LTK, int(ltk),
                       irk, int(irk_present), CSRK, int(csrk), sign_counter, flags)


def esp14(addr_type=1, addr=ADDR_LSB, key_size=16, ediv=EDIV, ltk=True, irk=SPEC_IRK_NIMBLE,
          irk_present=True, csrk=True, auth=False, sc=False, bond_count=3):
    flags = (1 if csrk else 0) | (2 if auth else 0) | (4 if sc else 0)
    return struct.pack(ESP14, addr_type, addr, bond_count, key_size, ediv, RAND, LTK, int(ltk),
                       irk, int(irk_present), CSRK, flags)


BUILDERS = ((upstream, 80, False), (esp15, 88, True), (esp14, 80, True))


def test_constants():
    eq((nimble.SEC_OUR, nimble.SEC_PEER, nimble.SEC_CCCD, nimble.SEC_OUR_IRK), (1, 2, 3, 10))


def test_blob_sizes():
    eq(len(upstream()), 80)
    eq(len(esp15()), 88)
    eq(len(esp14()), 80)


def test_parse_spec_irk_byte_order():
    for build, layout, esp in BUILDERS:
        info = nimble.parse_sec(build())
        eq(info.irk, SPEC_IRK, build.__name__)
        eq(type(info.irk), bytes)
        # the parsed IRK resolves the spec's sample RPA (the privacy module wants MSB-first)
        assert privacy.resolve(info.irk, SPEC_RPA)


def test_parse_fields_every_layout():
    for build, layout, esp in BUILDERS:
        for auth in (False, True):
            for sc in (False, True):
                for csrk in (False, True):
                    for ltk in (False, True):
                        blob = build(key_size=7 + auth + 2 * sc, ltk=ltk, csrk=csrk, auth=auth, sc=sc)
                        i = nimble.parse_sec(blob)
                        what = "%s auth=%s sc=%s csrk=%s ltk=%s" % (build.__name__, auth, sc, csrk, ltk)
                        eq(i.addr_type, 1, what)
                        eq(i.addr, ADDR, what)
                        eq(i.key_size, 7 + auth + 2 * sc, what)
                        eq(i.ediv, EDIV, what)
                        eq(i.authenticated, auth, what)
                        eq(i.sc, sc, what)
                        eq(i.csrk_present, csrk, what)
                        eq(i.ltk_present, ltk, what)
                        eq(i.irk, SPEC_IRK, what)
                        eq(i.layout, layout, what)
                        eq(i.esp, esp, what)


def test_parse_public_address_and_no_irk():
    for build, layout, esp in BUILDERS:
        blob = build(addr_type=0, addr=hexb("06 05 04 03 02 01"), irk_present=False)
        i = nimble.parse_sec(blob)
        eq((i.addr_type, i.addr, i.irk), (0, hexb("010203040506"), None))
        # irk bytes present but the flag says no: still None
        eq(nimble.parse_sec(build(irk=SPEC_IRK_NIMBLE, irk_present=False)).irk, None)


def test_all_zero_irk_counts_as_none():
    for build, layout, esp in BUILDERS:
        eq(nimble.parse_sec(build(irk=bytes(16), irk_present=True)).irk, None)
        one = bytearray(16)
        one[15] = 1  # LSB-first in NimBLE -> first byte MSB-first
        eq(nimble.parse_sec(build(irk=bytes(one))).irk, b"\x01" + bytes(15))


def test_esp14_told_apart_from_upstream():
    # same length; esp-nimble 1.4 has padding at 7 and key_size at 10
    a = nimble.parse_sec(upstream(key_size=12, ediv=0x0102))
    b = nimble.parse_sec(esp14(key_size=12, ediv=0x0102, bond_count=0))
    eq((a.key_size, a.ediv, a.esp), (12, 0x0102, False))
    eq((b.key_size, b.ediv, b.esp), (12, 0x0102, True))
    # upstream with non-zero padding at 10: key_size at 7 is set, so still upstream
    blob = bytearray(upstream(key_size=16, ediv=0xFF00))
    blob[10] = 0x5A
    c = nimble.parse_sec(blob)
    eq((c.key_size, c.ediv, c.esp), (16, 0xFF00, False))


def test_parse_copies_from_a_memoryview():
    # IRQ data are memoryviews valid only during the call: parsed fields must not alias
    for build, layout, esp in BUILDERS:
        buf = bytearray(build(auth=True, sc=True))
        info = nimble.parse_sec(memoryview(buf))
        for i in range(len(buf)):
            buf[i] = 0xA5
        eq(info.addr, ADDR)
        eq(info.irk, SPEC_IRK)
        eq((info.authenticated, info.sc, info.key_size), (True, True, 16))


def test_other_lengths_give_none():
    for n in (0, 1, 7, 16, 72, 79, 81, 84, 87, 89, 96, 160, 300):
        eq(nimble.parse_sec(bytes(n)), None, n)
        eq(nimble.parse_sec(memoryview(bytearray(n))), None, n)
    eq(nimble.parse_sec(upstream() + b"\x00"), None)
    eq(nimble.parse_sec(esp15()[:-1]), None)


def test_random_blobs_never_raise():
    for _ in range(1500):
        for n in (80, 88):
            info = nimble.parse_sec(os.urandom(n))
            eq(info.layout, n)
            assert info.irk is None or len(info.irk) == 16
            assert 0 <= info.key_size <= 255 and 0 <= info.ediv <= 0xFFFF
            repr(info)



def _index_ref(value):
    """index_fields' answer, derived from parse_sec (the oracle)."""
    info = nimble.parse_sec(value)
    if info is None:
        return -1
    r = info.key_size | (nimble.INDEX_AUTH if info.authenticated else 0) | (nimble.INDEX_SC if info.sc else 0)
    return r | (nimble.INDEX_IRK if info.irk else 0)


def test_index_fields_match_parse_sec():
    blobs = [build(key_size=7 + auth + 2 * sc, auth=auth, sc=sc, irk_present=irk)
             for build, _, _ in BUILDERS for auth in (0, 1) for sc in (0, 1) for irk in (False, True)]
    blobs += [build(irk=bytes(16)) for build, _, _ in BUILDERS]  # an all-zero IRK is none
    blobs += [os.urandom(n) for n in (80, 88) for _ in range(300)] + [bytes(n) for n in (0, 7, 79, 81, 87, 89)]
    for value in blobs:
        want = _index_ref(value)
        record = b"KEY4567" + value  # as the peer database stores it: key || value
        eq(nimble.index_fields(memoryview(record), 7), want, value)
        eq(nimble.index_fields(record, 7), want, value)

def test_repr_shows_no_key_material():
    secrets = []
    for k in (LTK, CSRK, SPEC_IRK, SPEC_IRK_NIMBLE, struct.pack("<Q", RAND), struct.pack(">Q", RAND)):
        h = "".join("%02x" % b for b in k)
        secrets += [h, h.upper(), h[:8], h[-8:], repr(k)[2:12]]
    secrets += ["%x" % RAND, "%d" % RAND]
    for build, layout, esp in BUILDERS:
        info = nimble.parse_sec(build(auth=True, sc=True))
        for text in (repr(info), str(info)):
            assert "c0:11:22:33:44:55" in text, text
            for s in secrets:
                assert s not in text, (s, text)
        for name in ("ltk", "csrk", "rand", "rand_num"):
            assert not hasattr(info, name), name


def test_key_addr_and_addr_key():
    key = b"\x01" + ADDR_LSB
    eq(nimble.key_addr(key), (1, ADDR))
    eq(nimble.key_addr(memoryview(key)), (1, ADDR))
    eq(nimble.addr_key(1, ADDR), key)
    eq(nimble.addr_key(0, bytearray(ADDR)), b"\x00" + ADDR_LSB)
    eq(type(nimble.addr_key(1, memoryview(ADDR))), bytes)
    for _ in range(300):
        t = os.urandom(1)[0] & 1
        a = os.urandom(6)
        k = nimble.addr_key(t, a)
        eq(len(k), 7)
        eq(k[1:], bytes(reversed(a)))
        eq(nimble.key_addr(k), (t, a))
    # a blob's own first 7 bytes are its key
    eq(nimble.key_addr(upstream()[:7]), (1, ADDR))


def test_bad_input_names_the_argument():
    with raises(TypeError, "key"):
        nimble.key_addr("0123456")
    with raises(TypeError, "key"):
        nimble.key_addr(None)
    with raises(ValueError, "key"):
        nimble.key_addr(b"irk")  # SEC_OUR_IRK's key is not an address
    with raises(ValueError, "key"):
        nimble.key_addr(bytes(8))
    with raises(TypeError, "addr_type"):
        nimble.addr_key("1", ADDR)
    with raises(TypeError, "addr_type"):
        nimble.addr_key(True, ADDR)
    with raises(ValueError, "addr_type"):
        nimble.addr_key(2, ADDR)
    with raises(TypeError, "addr"):
        nimble.addr_key(1, "c01122334455")
    with raises(ValueError, "addr"):
        nimble.addr_key(1, ADDR[:5])
    with raises(TypeError, "value"):
        nimble.parse_sec("x" * 80)
    with raises(TypeError, "value"):
        nimble.parse_sec(None)
    with raises(TypeError, "value"):
        nimble.parse_sec(list(range(80)))


def test_reverse_viper_matches_reference():
    from nimble_ref import reverse_into_ref

    samples = [bytes(24), b"\xff" * 24, bytes(range(0x80, 0x98)), bytes(range(24))]
    samples += [os.urandom(24) for _ in range(500)]
    for src in samples:
        for at, off, n in ((0, 0, 6), (1, 0, 6), (0, 1, 6), (0, 8, 16), (3, 5, 16), (0, 0, 0), (7, 23, 1)):
            a = bytearray(b"\x5a" * 24)
            b = bytearray(b"\x5a" * 24)
            nimble._reverse_into(a, at, src, off, n)
            reverse_into_ref(b, at, src, off, n)
            eq(a, b, repr((src, at, off, n)))
            eq(bytes(a[at : at + n]), bytes(reversed(src[off : off + n])))
        nimble._reverse_into(bytearray(6), 0, memoryview(src), 18, 6)  # memoryview source
