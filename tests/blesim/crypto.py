"""Security-manager crypto for the simulator, written independently of aioble_pm.

Everything is in spec notation (Core Vol 3 Part H 2.2): byte strings MSB-first, as
cryptolib's AES-128 wants them. NimBLE keeps keys LSB-first in its structs; layout.py
does that swap. Checked against the spec sample data (FACTS 4.1, 4.5) in mp_blesim_crypto.py.
"""
from micropython import const
import cryptolib

_ECB = const(1)
_ZERO16 = bytes(16)


def aes(key, block):
    """e(key, block): AES-128 of one 16-byte block."""
    return cryptolib.aes(bytes(key), _ECB).encrypt(bytes(block))


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def ah(irk, prand):
    """Random address hash (Vol 3 Part H 2.2.2): e(irk, 0^104 || prand) mod 2^24."""
    return aes(irk, bytes(13) + bytes(prand))[13:]


def c1(k, r, preq, pres, iat, ia, rat, ra):
    """Legacy confirm value (2.2.3). preq/pres are the 7-byte pairing commands as sent
    (opcode first); in spec notation they are the reversed byte strings."""
    p1 = bytes(reversed(pres)) + bytes(reversed(preq)) + bytes((rat, iat))
    p2 = bytes(4) + bytes(ia) + bytes(ra)
    return aes(k, xor(aes(k, xor(r, p1)), p2))


def s1(k, r1, r2):
    """Legacy short term key (2.2.4): e(k, r1' || r2') with the low 64 bits of each."""
    return aes(k, bytes(r1[8:]) + bytes(r2[8:]))


def _shift1(b):
    out = bytearray(16)
    carry = 0
    for i in range(15, -1, -1):
        v = b[i]
        out[i] = ((v << 1) | carry) & 0xFF
        carry = v >> 7
    return out, carry


def cmac(key, msg):
    """AES-CMAC (RFC 4493), the base of f4/f5/f6/g2."""
    enc = cryptolib.aes(bytes(key), _ECB)
    k1, c = _shift1(enc.encrypt(_ZERO16))
    if c:
        k1[15] ^= 0x87
    k2, c = _shift1(k1)
    if c:
        k2[15] ^= 0x87
    msg = bytes(msg)
    n = (len(msg) + 15) // 16 or 1
    last = msg[(n - 1) * 16 :]
    if len(last) == 16:
        last = xor(last, k1)
    else:
        last = xor(last + b"\x80" + bytes(15 - len(last)), k2)
    x = bytes(16)
    for i in range(n - 1):
        x = cryptolib.aes(bytes(key), _ECB).encrypt(xor(x, msg[i * 16 : i * 16 + 16]))
    return cryptolib.aes(bytes(key), _ECB).encrypt(xor(x, last))


def f4(u, v, x, z):
    return cmac(x, bytes(u) + bytes(v) + bytes((z,)))


_SALT = bytes.fromhex("6c888391aaf5a53860370bdb5a6083be")
_BTLE = b"btle"


def f5(w, n1, n2, a1, a2):
    """(MacKey, LTK) from the DHKey w, nonces and the 7-byte type||address values."""
    t = cmac(_SALT, w)
    tail = _BTLE + bytes(n1) + bytes(n2) + bytes(a1) + bytes(a2) + b"\x01\x00"
    return cmac(t, b"\x00" + tail), cmac(t, b"\x01" + tail)


def f6(w, n1, n2, r, iocap, a1, a2):
    return cmac(w, bytes(n1) + bytes(n2) + bytes(r) + bytes(iocap) + bytes(a1) + bytes(a2))


def g2(u, v, x, y):
    """Numeric comparison value source: a 32-bit int (the 6 digits are value % 10**6)."""
    h = cmac(x, bytes(u) + bytes(v) + bytes(y))
    return (h[12] << 24 | h[13] << 16 | h[14] << 8 | h[15]) & 0xFFFFFFFF
