"""AES-128 modes for bond exports (backup.py): CTR encryption and the AES-CMAC tag
(RFC 4493), both built on `cryptolib.aes` ECB, which every port with cryptolib has
(the unix port's has ECB and CBC only, no CTR). Loaded only by export/restore.

CMAC is implemented here and tested against RFC 4493 section 4; CTR against NIST
SP 800-38A F.5.1 (tests/mp_backup.py).
"""
from micropython import const

_ECB = const(1)
_RB = const(0x87)  # RFC 4493 constant for 128-bit blocks


def _aes(key):
    from cryptolib import aes

    if type(key) not in (bytes, bytearray) or len(key) != 16:
        raise ValueError("key must be 16 bytes")
    return aes(bytes(key), _ECB)


def _shift1(block):
    """block << 1 as a 128-bit big-endian number (the overflow bit is dropped)."""
    out = bytearray(16)
    carry = 0
    for i in range(15, -1, -1):
        b = block[i]
        out[i] = ((b << 1) | carry) & 0xFF
        carry = b >> 7
    return out


def subkeys(key):
    """(K1, K2) of RFC 4493 section 2.3."""
    L = _aes(key).encrypt(bytes(16))
    k1 = _shift1(L)
    if L[0] & 0x80:
        k1[15] ^= _RB
    k2 = _shift1(k1)
    if k1[0] & 0x80:
        k2[15] ^= _RB
    return bytes(k1), bytes(k2)


def cmac(key, msg):
    """AES-CMAC(key, msg): the 16-byte tag (RFC 4493)."""
    k1, k2 = subkeys(key)
    e = _aes(key)
    n = len(msg)
    full = n // 16
    if n == 0 or n % 16:
        last = bytearray(16)
        r = n - 16 * full
        last[0:r] = msg[16 * full :]
        last[r] = 0x80
        sub = k2
    else:
        full -= 1
        last = bytearray(msg[16 * full : 16 * full + 16])
        sub = k1
    x = bytearray(16)
    y = bytearray(16)
    mv = memoryview(msg)
    for i in range(full):
        blk = mv[16 * i : 16 * i + 16]
        for j in range(16):
            y[j] = x[j] ^ blk[j]
        e.encrypt(y, x)
    for j in range(16):
        y[j] = x[j] ^ last[j] ^ sub[j]
    e.encrypt(y, x)
    return bytes(x)


def ctr(key, counter, data):
    """AES-CTR of data (encrypt = decrypt) from the 16-byte initial counter block;
    the low 64 bits count up big-endian per block (NIST SP 800-38A)."""
    if len(counter) != 16:
        raise ValueError("counter must be 16 bytes")
    e = _aes(key)
    cb = bytearray(counter)
    ks = bytearray(16)
    out = bytearray(data)
    for off in range(0, len(out), 16):
        e.encrypt(cb, ks)
        for j in range(min(16, len(out) - off)):
            out[off + j] ^= ks[j]
        i = 15
        while i >= 8:  # increment the low 64 bits
            cb[i] = (cb[i] + 1) & 0xFF
            if cb[i]:
                break
            i -= 1
    return bytes(out)


def equal(a, b):
    """Compare two tags without an early exit."""
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0
