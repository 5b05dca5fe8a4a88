# Peer Manager with 32 bonds vs aioble's own bond handling, on the unix port:
#   * heap kept per bonded peer: PeerManager (index in RAM, secrets on flash) vs the
#     dict aioble's load_secrets() builds ({(sec_type, key): value});
#   * boot: mount + index + the GET_SECRET calls NimBLE makes at activation (own IRK,
#     PEER_SEC iteration) vs aioble: load_secrets() from ble_secrets.json on LittleFS
#     and the same GET_SECRET calls answered from its dict.
# Run: micropython bench/bench_manager.py [quick]   (MICROPYPATH = repo root)
import sys
import os
import gc
import json
import time
import binascii
import vfs
from aioble_pm import peers, nimble
from aioble_pm.flash import RamFlash
from aioble_pm.zms import ZMS
import aioble_pm

QUICK = "quick" in sys.argv
ROUNDS = 2 if QUICK else 10
N = 32
SIZE = 64 * 1024
SECTOR = 4096


def bonds():
    """32 bonds as NimBLE hands them over: (key, OUR_SEC value, PEER_SEC value)."""
    out = []
    for i in range(N):
        key = bytes([0, i, 0x22, 0x33, 0x44, 0x55, 0x66])
        v = bytearray(os.urandom(80))
        v[0:7] = key
        v[7] = 16
        v[40] = 1
        v[57] = 1
        v[74] = 4
        out.append((key, bytes(v), bytes(v)))
    return out


def pm_image(data, irk):
    fl = RamFlash(SIZE, SECTOR)
    db = peers.PeerDB(ZMS(fl), max_peers=N)
    for i, (key, our, peer) in enumerate(data):
        db.write_secret(i, nimble.SEC_OUR, key, our)
        db.write_secret(i, nimble.SEC_PEER, key, peer)
    db.store.write(peers.SYS_OUR_IRK, irk)
    return fl.image()


class Blocks:
    """Extended block device over a RamFlash, for vfs.VfsLfs2."""

    def __init__(self, fl):
        self.fl = fl

    def readblocks(self, n, buf, off=0):
        self.fl.read(n * SECTOR + off, buf)

    def writeblocks(self, n, buf, off=None):
        if off is None:
            for i in range(len(buf) // SECTOR):
                self.fl.erase(n + i)
            off = 0
        self.fl.program(n * SECTOR + off, buf)

    def ioctl(self, op, arg):
        if op == 4:
            return SIZE // SECTOR
        if op == 5:
            return SECTOR
        if op == 6:
            self.fl.erase(arg)
        return 0


def json_fs(data, irk):
    """A LittleFS holding ble_secrets.json as aioble writes it."""
    bdev = Blocks(RamFlash(SIZE, SECTOR))
    vfs.VfsLfs2.mkfs(bdev)
    fs = vfs.VfsLfs2(bdev)
    rows = [[10, binascii.b2a_base64(b"irk"), binascii.b2a_base64(irk)]]
    for key, our, peer in data:
        rows.append([1, binascii.b2a_base64(key), binascii.b2a_base64(our)])
        rows.append([2, binascii.b2a_base64(key), binascii.b2a_base64(peer)])
    with fs.open("ble_secrets.json", "w") as f:
        json.dump(rows, f)
    return fs


def aioble_load(fs):
    """What aioble's load_secrets() builds (FACTS §5.1), from the same file."""
    secrets = {}
    with fs.open("ble_secrets.json", "r") as f:
        for sec_type, key, value in json.load(f):
            secrets[sec_type, binascii.a2b_base64(key)] = binascii.a2b_base64(value)
    return secrets


def aioble_get(secrets, sec_type, index, key):
    """aioble's GET_SECRET answer: exact lookup, or the index-th entry of the type."""
    if key is None:
        i = 0
        for (t, _k), value in secrets.items():
            if t == sec_type:
                if i == index:
                    return value
                i += 1
        return None
    return secrets.get((sec_type, bytes(key)), None)


def activation(get):
    """The GET_SECRET calls NimBLE makes when MicroPython activates it (FACTS §3.3)."""
    i = 0
    while get(2, i, None):  # None or b"": not found (the binding checks the length)
        i += 1
    get(10, 0, b"irk")
    i = 0
    while get(2, i, None):
        i += 1
    return i


def heap(make):
    """(bytes of heap still held after make(), its result)"""
    gc.collect()
    gc.collect()
    before = gc.mem_alloc()
    obj = make()
    gc.collect()
    gc.collect()
    return gc.mem_alloc() - before, obj


def best_ms(*fns):
    """Best time of each fn over ROUNDS, the fns taking turns in every round, so that a
    machine that speeds up or slows down midway shifts them all alike."""
    best = [None] * len(fns)
    for _ in range(ROUNDS):
        for i, fn in enumerate(fns):
            gc.collect()
            t = time.ticks_us()
            fn()
            dt = time.ticks_diff(time.ticks_us(), t) / 1000
            if best[i] is None or dt < best[i]:
                best[i] = dt
    return best


def main():
    data = bonds()
    irk = os.urandom(16)
    image = pm_image(data, irk)
    fs = json_fs(data, irk)

    # heap kept by a PeerManager (its flash object excluded: on a board that is an
    # esp32.Partition, not RAM) with 32 bonds and with none, vs the dict aioble builds
    aioble_pm.PeerManager(RamFlash(SIZE, SECTOR), max_peers=N)  # import every module first
    full = RamFlash.from_image(image, SECTOR)
    empty = RamFlash(SIZE, SECTOR)
    pm_heap, pm = heap(lambda: aioble_pm.PeerManager(full, max_peers=N))
    fixed, _ = heap(lambda: aioble_pm.PeerManager(empty, max_peers=N))
    assert len(pm.peer_ids()) == N
    dict_heap, secrets = heap(lambda: aioble_load(fs))
    assert len(secrets) == 2 * N + 1
    print("bench: pm_heap_0_bonds = %d bytes" % fixed)
    print("bench: pm_heap_marginal_per_peer = %d bytes" % ((pm_heap - fixed) // N))
    print("bench: pm_heap_32_bonds = %d bytes" % pm_heap)
    print("bench: aioble_dict_heap_32_bonds = %d bytes" % dict_heap)
    print("bench: pm_ram_per_peer = %d bytes" % (pm_heap // N))
    print("bench: aioble_ram_per_peer = %d bytes" % (dict_heap // N))
    print("bench: pm_vs_aioble_ram_per_peer = %.2f x" % (pm_heap / dict_heap))
    del pm, secrets

    def pm_boot():
        p = aioble_pm.PeerManager(RamFlash.from_image(image, SECTOR), max_peers=N)
        assert activation(lambda t, i, k: p.irq(29, (t, i, k))) == N

    def aioble_boot():
        s = aioble_load(fs)
        assert activation(lambda t, i, k: aioble_get(s, t, i, k)) == N

    copy, pm_ms, aioble_ms = best_ms(lambda: RamFlash.from_image(image, SECTOR), pm_boot, aioble_boot)
    pm_ms -= copy  # the image copy stands in for a real partition
    print("bench: pm_boot_32_bonds = %.2f ms" % pm_ms)
    print("bench: aioble_boot_32_bonds = %.2f ms" % aioble_ms)
    print("bench: pm_vs_aioble_boot = %.2f x" % (pm_ms / aioble_ms))


main()
