# Cost of decoding a NimBLE secret in the _IRQ_SET_SECRET path, next to the copy the
# store makes anyway (bytes(value)) and to a struct.unpack of the whole blob.
# Run: micropython bench/bench_nimble.py [quick]  (MICROPYPATH = repo root)
import sys
import gc
import os
import struct
import time
import aioble_pm

gc.collect()
_before = gc.mem_alloc()
from aioble_pm import nimble  # noqa: E402

gc.collect()
IMPORT_HEAP = gc.mem_alloc() - _before  # bytecode + objects, loaded from .py source

QUICK = "quick" in sys.argv
N = 200 if QUICK else 5000
UPSTREAM = "<B6sBH6xQ16sB16sB16sB5x"


def best_us(fn, arg, n=N):
    best = None
    for _ in range(3):
        t = time.ticks_us()
        for _ in range(n):
            fn(arg)
        dt = time.ticks_diff(time.ticks_us(), t) / n
        best = dt if best is None or dt < best else best
    return best


def heap_bytes(fn, arg):
    """Heap bytes allocated by one call (result kept alive)."""
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    keep = fn(arg)
    used = gc.mem_alloc() - before
    gc.enable()
    del keep
    return used


def unpack_all(value):
    return struct.unpack(UPSTREAM, value)


def blob(size):
    b = bytearray(os.urandom(size))
    b[7] = 16  # upstream key_size
    b[57] = 1  # irk_present
    return memoryview(b)  # what the IRQ hands over


def main():
    print("bench: nimble_import_heap = %d bytes" % IMPORT_HEAP)
    for size in (80, 88):
        mv = blob(size)
        parse = best_us(nimble.parse_sec, mv)
        copy = best_us(bytes, mv)
        print("bench: parse_sec_%d = %.2f us" % (size, parse))
        print("bench: blob_copy_%d = %.2f us" % (size, copy))
        print("bench: parse_sec_vs_copy_%d = %.1f x" % (size, parse / copy))
        print("bench: parse_sec_heap_%d = %d bytes" % (size, heap_bytes(nimble.parse_sec, mv)))
    mv = blob(80)
    print("bench: struct_unpack_80 = %.2f us" % best_us(unpack_all, mv))
    print("bench: parse_sec_vs_struct_unpack_80 = %.2f x" % (best_us(nimble.parse_sec, mv) / best_us(unpack_all, mv)))
    key = memoryview(bytearray(b"\x01\x55\x44\x33\x22\x11\xc0"))
    print("bench: key_addr = %.2f us" % best_us(nimble.key_addr, key))
    print("bench: parse_sec_other_length = %.2f us" % best_us(nimble.parse_sec, memoryview(bytearray(64))))


main()
