# The simulator's own crypto (tests/blesim/crypto.py) and store layout against spec data.
from mptest import eq, hexb
from blesim import crypto, layout

SPEC_U = hexb("20b003d2f297be2c5e2c83a7e9f9a5b9eff49111acf4fddbcc0301480e359de6")
SPEC_V = hexb("55188b3d32f6bb9a900afcfbeed4e72a59cb9ac2f19d7cfb6b4fdd49f47fc5fd")
SPEC_X = hexb("d5cb8454d177733effffb2ec712baeab")
SPEC_N2 = hexb("a6e8e7cc25a75f6e216583f7ff3dc4cf")
SPEC_W = hexb("ec0234a357c8ad05341010a60a397d9b99796b13b4f866f1868d34f373bfa698")
SPEC_A1 = hexb("0056123737bfce")
SPEC_A2 = hexb("00a713702dcfc1")


def test_ah_c1_s1_spec_samples():
    eq(crypto.ah(hexb("ec0234a357c8ad05341010a60a397d9b"), hexb("708194")), hexb("0dfbaa"))
    preq = bytes(reversed(hexb("07071000000101")))  # as sent: opcode first
    pres = bytes(reversed(hexb("05000800000302")))
    eq(crypto.c1(bytes(16), hexb("5783d52156ad6f0e6388274ec6702ee0"), preq, pres, 1, hexb("a1a2a3a4a5a6"), 0,
                 hexb("b1b2b3b4b5b6")), hexb("1e1e3fef878988ead2a74dc5bef13b86"))
    eq(crypto.s1(bytes(16), hexb("000f0e0d0c0b0a091122334455667788"), hexb("010203040506070899aabbccddeeff00")),
       hexb("9a1fe1f0e8b0f49b5b4216ae796da062"))


def test_le_secure_connections_spec_samples():
    eq(crypto.f4(SPEC_U, SPEC_V, SPEC_X, 0), hexb("f2c916f107a9bd1cf1eda1bea974872d"))
    mackey, ltk = crypto.f5(SPEC_W, SPEC_X, SPEC_N2, SPEC_A1, SPEC_A2)
    eq(mackey, hexb("2965f176a1084a02fd3f6a20ce636e20"))
    eq(ltk, hexb("6986791169d7cd23980522b594750a38"))
    eq(crypto.f6(mackey, SPEC_X, SPEC_N2, hexb("12a3343bb453bb5408da42d20c2d0fc8"), hexb("010102"), SPEC_A1, SPEC_A2),
       hexb("e3c473989cd0e8c5d26c0b09da958f61"))
    eq(crypto.g2(SPEC_U, SPEC_V, SPEC_X, SPEC_N2), 0x2F9ED5BA)
    eq(crypto.g2(SPEC_U, SPEC_V, SPEC_X, SPEC_N2) % 1000000, 938554)


def test_cmac_rfc4493_vectors():
    k = hexb("2b7e151628aed2a6abf7158809cf4f3c")
    eq(crypto.cmac(k, b""), hexb("bb1d6929e95937287fa37d129b756746"))
    eq(crypto.cmac(k, hexb("6bc1bee22e409f96e93d7e117393172a")), hexb("070a16b46b4d4144f79bdd9dd04a287c"))
    m = hexb("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411")
    eq(crypto.cmac(k, m), hexb("dfa66747de9ae63030ca32611497c827"))


def test_layout_roundtrip_both_sizes():
    s = layout.Sec(1, hexb("c01122334455"))
    s.ltk, s.key_size, s.ediv, s.rand = bytes(range(16)), 16, 0xBEEF, 0x8877665544332211
    s.irk, s.csrk, s.authenticated, s.sc = bytes(range(16, 32)), bytes(range(32, 48)), True, True
    for size in (80, 88):
        blob = layout.pack(s, size)
        eq(len(blob), size)
        eq(blob[0:7], b"\x01\x55\x44\x33\x22\x11\xc0", "peer_addr LSB-first")
        o = layout.FIELDS[size]["ltk"][0]
        eq(blob[o : o + 16], bytes(reversed(range(16))), "ltk LSB-first")
        t = layout.unpack(blob)
        for f in ("addr_type", "addr", "ltk", "key_size", "ediv", "rand", "irk", "csrk", "authenticated", "sc"):
            eq(getattr(t, f), getattr(s, f), f)
    empty = layout.unpack(layout.pack(layout.Sec(0, bytes(6)), 80))
    assert empty.ltk is None and empty.irk is None and empty.csrk is None
