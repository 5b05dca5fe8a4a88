#!/usr/bin/env python3
"""Read an aioble_pm bond export (pm.export(key=...), format: docs/EXPORT.md) on a PC.

    python3 tools/bond_export.py EXPORT.bin --key 000102...0f [--secrets]

Checks the AES-CMAC tag, decrypts (AES-128-CTR) and prints each bond: peer ID, identity
address, rank, pinned, key size, authenticated/SC, IRK present, app data length. Keys
(LTK, IRK, CSRK, our IRK) are printed only with --secrets. AES-128 is implemented here
in pure Python (checked against FIPS-197 in tests/test_bond_export.py), so the tool
needs nothing beyond the standard library.
"""
import argparse
import sys

MAGIC = b"PMBK"
VERSION = 1
LABEL = b"aioble_pm export"


# --- AES-128 (FIPS-197) ----------------------------------------------------------------

def _xtime(a):
    a <<= 1
    return (a ^ 0x11B) if a & 0x100 else a


def _sbox():
    # multiplicative inverse in GF(2^8) followed by the affine map (FIPS-197 5.1.1)
    inv = [0] * 256
    for a in range(1, 256):
        for b in range(1, 256):
            x, y, p = a, b, 0
            while y:
                if y & 1:
                    p ^= x
                x = _xtime(x)
                y >>= 1
            if p == 1:
                inv[a] = b
                break
    box = []
    for a in range(256):
        b = inv[a]
        s = b
        for i in range(1, 5):
            s ^= ((b << i) | (b >> (8 - i))) & 0xFF
        box.append(s ^ 0x63)
    return box


SBOX = _sbox()


def _expand(key):
    w = [list(key[4 * i : 4 * i + 4]) for i in range(4)]
    rcon = 1
    for i in range(4, 44):
        t = list(w[i - 1])
        if i % 4 == 0:
            t = [SBOX[b] for b in t[1:] + t[:1]]
            t[0] ^= rcon
            rcon = _xtime(rcon)
        w.append([a ^ b for a, b in zip(w[i - 4], t)])
    return [sum(w[4 * r : 4 * r + 4], []) for r in range(11)]


def aes128_encrypt(key, block):
    """One AES-128 block encryption (column-major state as in FIPS-197)."""
    rk = _expand(key)
    s = [b ^ k for b, k in zip(block, rk[0])]
    for r in range(1, 11):
        s = [SBOX[b] for b in s]
        s = [s[(i + 4 * (i % 4)) % 16] for i in range(16)]  # ShiftRows
        if r != 10:
            m = []
            for c in range(4):
                a = s[4 * c : 4 * c + 4]
                t = a[0] ^ a[1] ^ a[2] ^ a[3]
                m += [a[i] ^ t ^ _xtime(a[i] ^ a[(i + 1) % 4]) for i in range(4)]
            s = m
        s = [b ^ k for b, k in zip(s, rk[r])]
    return bytes(s)


class AES:
    def __init__(self, key):
        self.rk = bytes(key)

    def encrypt(self, block):
        return aes128_encrypt(self.rk, block)


# --- modes: AES-CMAC (RFC 4493), AES-CTR (SP 800-38A) -----------------------------------

def _dbl(b):
    n = (int.from_bytes(b, "big") << 1) & ((1 << 128) - 1)
    if b[0] & 0x80:
        n ^= 0x87
    return n.to_bytes(16, "big")


def cmac(key, msg):
    e = AES(key)
    k1 = _dbl(e.encrypt(bytes(16)))
    k2 = _dbl(k1)
    blocks = [msg[i : i + 16] for i in range(0, len(msg), 16)] or [b""]
    last = blocks[-1]
    if len(last) == 16 and msg:
        last = bytes(a ^ b for a, b in zip(last, k1))
    else:
        last = bytes(a ^ b for a, b in zip(last + b"\x80" + bytes(15 - len(last)), k2))
    x = bytes(16)
    for blk in blocks[:-1] + [last]:
        x = e.encrypt(bytes(a ^ b for a, b in zip(x, blk)))
    return x


def ctr(key, counter, data):
    e = AES(key)
    hi, lo = counter[:8], int.from_bytes(counter[8:], "big")
    out = bytearray()
    for i in range(0, len(data), 16):
        ks = e.encrypt(hi + ((lo + i // 16) & (2**64 - 1)).to_bytes(8, "big"))
        out += bytes(a ^ b for a, b in zip(data[i : i + 16], ks))
    return bytes(out)


# --- the export ------------------------------------------------------------------------

def open_export(data, key):
    """The decrypted payload; ValueError naming what is wrong."""
    if len(data) < 34:
        raise ValueError("truncated: %d bytes" % len(data))
    if data[:4] != MAGIC:
        raise ValueError("not an aioble_pm export (no PMBK magic)")
    if data[4] != VERSION:
        raise ValueError("export version %d not supported" % data[4])
    k_enc, k_mac = cmac(key, b"\x01" + LABEL), cmac(key, b"\x02" + LABEL)
    if cmac(k_mac, data[:-16]) != data[-16:]:
        raise ValueError("authentication failed (wrong key, or the data was changed or truncated)")
    return ctr(k_enc, data[8:16] + bytes(8), data[16:-16])


def parse(p):
    """{"our_irk": bytes|None, "peers": [dict]} from a payload (docs/EXPORT.md)."""
    o = 0

    def take(n):
        nonlocal o
        if o + n > len(p):
            raise ValueError("malformed: ends inside a field")
        o += n
        return p[o - n : o]

    n = take(1)[0]
    our_irk = take(n) if n else None
    peers = []
    for _ in range(take(1)[0]):
        pid, flags = take(2)
        rank = int.from_bytes(take(4), "little")
        our = take(take(1)[0])
        peer = take(take(1)[0])
        app = take(int.from_bytes(take(2), "little"))
        peers.append(dict(peer_id=pid, pinned=bool(flags & 1), rank=rank, our=our, peer=peer, app=app))
    if o != len(p):
        raise ValueError("malformed: %d bytes after the last peer" % (len(p) - o))
    return {"our_irk": our_irk, "peers": peers}


def sec_fields(value):
    """Fields of a NimBLE ble_store_value_sec (80 bytes upstream, 88 esp-nimble 1.5)."""
    esp = len(value) == 88
    f = {"addr_type": value[0], "addr": value[1:7][::-1]}
    f["key_size"] = value[10] if esp else value[7]
    f["ltk"] = value[24:40][::-1] if value[40] & 1 else None
    f["irk"] = value[41:57][::-1] if value[57] & 1 else None
    flags = value[80] if esp else value[74] >> 1
    f["authenticated"] = bool(flags & 1)
    f["sc"] = bool(flags & 2)
    return f


def describe(export, secrets=False):
    lines = []
    if secrets and export["our_irk"] is not None:
        lines.append("our IRK (as stored) %s" % export["our_irk"].hex())
    for p in export["peers"]:
        f = sec_fields(p["peer"][7:])
        line = "peer %d  %s %s  rank %d%s  key_size %d  auth=%d sc=%d irk=%s  app %d bytes" % (
            p["peer_id"], ("public", "random")[f["addr_type"] & 1], ":".join("%02x" % b for b in f["addr"]),
            p["rank"], "  pinned" if p["pinned"] else "", f["key_size"], f["authenticated"], f["sc"],
            "yes" if f["irk"] else "-", len(p["app"]))
        lines.append(line)
        if secrets:
            o = sec_fields(p["our"][7:])
            lines.append("    peer LTK %s  peer IRK %s  our LTK %s" % (
                f["ltk"].hex() if f["ltk"] else "-", f["irk"].hex() if f["irk"] else "-",
                o["ltk"].hex() if o["ltk"] else "-"))
    lines.append("%d bond(s)" % len(export["peers"]))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("export", help="file written from pm.export(key=...)")
    ap.add_argument("--key", required=True, help="the 16-byte key as 32 hex digits")
    ap.add_argument("--secrets", action="store_true", help="also print the keys")
    args = ap.parse_args(argv)
    try:
        key = bytes.fromhex(args.key)
    except ValueError:
        key = b""
    if len(key) != 16:
        ap.error("--key must be 32 hex digits (16 bytes)")
    with open(args.export, "rb") as f:
        data = f.read()
    try:
        print(describe(parse(open_export(data, key)), args.secrets))
    except ValueError as e:
        print("bond_export: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
