# Security manager pieces: RAM of the repeated-attempts tracker (8 peers) next to a
# plain dict of the same state, and the time of the calls the pairing path makes.
# Run: micropython bench/bench_security.py [quick]  (MICROPYPATH = repo root)
import sys
import gc
import time
import aioble_pm

gc.collect()
_before = gc.mem_alloc()
from aioble_pm import security  # noqa: E402

gc.collect()
IMPORT_HEAP = gc.mem_alloc() - _before  # bytecode + objects, loaded from .py source
# the parts security.py names but loads on first use (a failed pairing, a passkey)
from aioble_pm.attempts import RepeatedAttempts  # noqa: E402
from aioble_pm import pairing  # noqa: E402

QUICK = "quick" in sys.argv
N = 200 if QUICK else 3000


def best_us(fn, n=N):
    best = None
    for _ in range(3):
        t = time.ticks_us()
        for _ in range(n):
            fn()
        dt = time.ticks_diff(time.ticks_us(), t) / n
        best = dt if best is None or dt < best else best
    return best


def heap_of(make):
    gc.collect()
    before = gc.mem_alloc()
    obj = make()
    gc.collect()
    used = gc.mem_alloc() - before
    return used, obj


def peer(i):
    return bytes((1, i, 0x22, 0x33, 0x44, 0x55, 0xC0))


def tracker_full():
    ra = RepeatedAttempts()
    for i in range(8):
        ra.failed(peer(i))
    return ra


def dict_full():
    """The obvious alternative: {peer bytes: [level, tick]} for the same 8 peers."""
    d = {}
    for i in range(8):
        d[peer(i)] = [0, time.ticks_ms()]
    return d


def main():
    print("bench: security_import_heap = %d bytes" % IMPORT_HEAP)
    ra_bytes, ra = heap_of(tracker_full)
    dict_bytes, _ = heap_of(dict_full)
    print("bench: ra_tracker_8_peers_heap = %d bytes" % ra_bytes)
    print("bench: dict_8_peers_heap = %d bytes" % dict_bytes)
    print("bench: ra_tracker_vs_dict_heap = %.2f x" % (ra_bytes / dict_bytes))
    known, unknown = peer(3), peer(200)
    print("bench: ra_check_tracked = %.2f us" % best_us(lambda: ra.check(known)))
    print("bench: ra_check_untracked = %.2f us" % best_us(lambda: ra.check(unknown)))
    print("bench: new_passkey = %.2f us" % best_us(pairing.new_passkey))
    print("bench: pairing_method = %.2f us" % best_us(lambda: pairing.pairing_method(4, 1, True, False, True)))
    print("bench: sec_params_validate = %.2f us" % best_us(lambda: security.SecParams(mitm=True, io=4)))
    sp_bytes, _ = heap_of(lambda: security.SecParams(mitm=True, io=4))
    print("bench: sec_params_heap = %d bytes" % sp_bytes)


main()
