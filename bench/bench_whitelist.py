# Whitelist.match() on the unix port for N = 8, 32, 128 bonded peers: identity-address
# hits, RPA hits (fresh RPAs: no cache help), misses (strangers' RPAs) and repeated RPAs
# (cached), each beside a naive pure-Python matcher over the same list; misses also
# beside the AES floor (N encryptions of the prand block on prebuilt AES objects).
# Run: micropython bench/bench_whitelist.py [quick]   (MICROPYPATH = repo root)
import sys
import os
import gc
import time
import cryptolib
import aioble_pm
from aioble_pm import privacy, peers, nimble
from aioble_pm.flash import RamFlash

QUICK = "quick" in sys.argv
ROUNDS = 2 if QUICK else 20
POOL = 96  # distinct addresses per case: more than the caches hold


def best_us(runs, rounds=ROUNDS):
    """Best-of-3 mean time in us of fn(kind, addr) over `rounds` passes of `addrs`, for
    each (fn, addrs) of `runs`, taking turns in every try (see bench_privacy.py)."""
    best = [None] * len(runs)
    for _ in range(3):
        for i, (fn, addrs) in enumerate(runs):
            t = time.ticks_us()
            for _ in range(rounds):
                for kind, a in addrs:
                    fn(kind, a)
            dt = time.ticks_diff(time.ticks_us(), t) / (rounds * len(addrs))
            if best[i] is None or dt < best[i]:
                best[i] = dt
    return best


def manager(n):
    """A PeerManager holding n bonds (public identity, IRK) on a RAM flash."""
    gc.collect()
    fl = RamFlash(64 * 1024, 4096)  # 128 bonds of ~130 bytes fit easily
    pm = aioble_pm.PeerManager(fl, max_peers=n)
    irks = []
    for i in range(n):
        key = bytes([0, i & 0xFF, i >> 8, 0x33, 0x44, 0x55, 0x66])
        irk = os.urandom(16)
        v = bytearray(80)
        v[0:7] = key
        v[7] = 16
        v[41:57] = bytes(reversed(irk))
        v[57] = 1
        pm._db.write_secret(i, nimble.SEC_PEER, key, v)
        irks.append(irk)
    return pm, irks


def naive_matcher(entries):
    """The obvious pure-Python matcher: compare identities, then try every IRK."""

    def match(addr_type, addr):
        for pid, (t, ident, irk) in enumerate(entries):
            if t == addr_type and ident == addr:
                return pid
        if addr_type == 1:
            for pid, (t, ident, irk) in enumerate(entries):
                if privacy.resolve(irk, addr):
                    return pid
        return None

    return match


def floor_loop(irks):
    aes = [cryptolib.aes(k, 1) for k in irks]
    block = bytearray(16)
    out = bytearray(16)

    def run(_t, addr):  # the block resolution encrypts (see bench_privacy.py's floor)
        block[13] = addr[0]
        block[14] = addr[1]
        block[15] = addr[2]
        for a in aes:
            a.encrypt(block, out)

    return run


def main():
    for n in (8, 32, 128):
        pm, irks = manager(n)
        wl = pm.whitelist(device_privacy=True)
        assert len(wl) == n
        entries = [(0, pm._db.identity(p)[1], irks[p]) for p in range(n)]
        naive = naive_matcher(entries)
        pick = [os.urandom(1)[0] % n for _ in range(POOL)]
        cases = {
            "identity_hit": [(0, entries[p][1]) for p in pick],
            "rpa_hit": [(1, privacy.rpa(irks[p])) for p in pick],
            "miss": [(1, privacy.rpa(os.urandom(16))) for _ in range(POOL)],
            "repeated_rpa": [(1, privacy.rpa(irks[p])) for p in pick[:4]] * (POOL // 4),
        }
        for a in cases["rpa_hit"][:8] + cases["identity_hit"][:8]:
            assert wl.match(*a) == naive(*a) is not None
        for a in cases["miss"][:8]:
            assert wl.match(*a) is None and naive(*a) is None
        names = list(cases)
        measured = best_us([(wl.match, cases[c]) for c in names] + [(floor_loop(irks), cases["miss"])])
        times = dict(zip(names, measured))
        floor = measured[-1]
        for case in names:
            slow, = best_us([(naive, cases[case])], max(1, ROUNDS // 10))
            print("bench: wl_%s_n%d = %.2f us" % (case, n, times[case]))
            print("bench: naive_%s_n%d = %.2f us" % (case, n, slow))
            print("bench: naive_vs_wl_%s_n%d = %.1f x" % (case, n, slow / times[case]))
        print("bench: aes_floor_n%d = %.2f us" % (n, floor))
        print("bench: wl_miss_vs_floor_n%d = %.2f x" % (n, times["miss"] / floor))
        print("bench: wl_miss_vs_repeated_rpa_n%d = %.1f x" % (n, times["miss"] / times["repeated_rpa"]))


main()
