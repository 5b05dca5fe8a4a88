# Bond storage: the ZMS record store vs aioble's JSON file on LittleFS, both on the
# same simulated NOR flash (RamFlash: 64 KiB, 4 KiB sectors, 4-byte write block) with
# the same counters.
#   * 16 bonds (two 80-byte NimBLE secrets each), then 1000 secret updates:
#     bytes programmed and sectors erased per update;
#   * 32 bonds: mount + index time vs loading the JSON file.
# Run: micropython bench/bench_storage.py [quick]   (MICROPYPATH = repo root)
import sys
import os
import gc
import json
import time
import binascii
import vfs
from aioble_pm.flash import RamFlash
from aioble_pm.zms import ZMS

QUICK = "quick" in sys.argv
SIZE = 64 * 1024
SECTOR = 4096
UPDATES = 100 if QUICK else 1000
ROUNDS = 3 if QUICK else 20
SECRET = 80  # sizeof(struct ble_store_value_sec) in MicroPython's NimBLE
OUR_SEC, PEER_SEC, OUR_IRK = 1, 2, 10  # aioble/NimBLE secret types
DATA_ID = {OUR_SEC: 0x21, PEER_SEC: 0x22}  # record id = (peer << 16) | data id
IRK_RECORD = 0xFFFF0001


def new_flash():
    return RamFlash(SIZE, sector_size=SECTOR, write_block=4)


class LfsBlocks:
    """Block device (extended interface) for vfs.VfsLfs2 over a RamFlash."""

    def __init__(self, flash):
        self.flash = flash
        self.bs = flash.sector_size

    def readblocks(self, n, buf, off=0):
        self.flash.read(n * self.bs + off, buf)

    def writeblocks(self, n, buf, off=None):
        if off is None:  # simple interface: erase, then write whole blocks
            for i in range(len(buf) // self.bs):
                self.flash.erase(n + i)
            off = 0
        self.flash.program(n * self.bs + off, buf)

    def ioctl(self, op, arg=None):
        if op == 4:
            return self.flash.size // self.bs
        if op == 5:
            return self.bs
        if op == 6:
            self.flash.erase(arg)
        return 0


class JsonStore:
    """aioble's bond storage as it behaves: a dict (sec_type, key) -> value, saved by
    rewriting the whole file as a JSON list of [sec_type, base64 key, base64 value]."""

    PATH = "ble_secrets.json"

    def __init__(self, flash, fresh=True):
        self.bdev = LfsBlocks(flash)
        if fresh:
            vfs.VfsLfs2.mkfs(self.bdev)
        self.fs = vfs.VfsLfs2(self.bdev)
        self.secrets = {}

    def set(self, sec_type, key, value):
        self.secrets[sec_type, key] = value
        self.save()

    def save(self):
        rows = [(t, binascii.b2a_base64(k), binascii.b2a_base64(v)) for (t, k), v in self.secrets.items()]
        with self.fs.open(self.PATH, "w") as f:
            json.dump(rows, f)

    def load(self):
        secrets = {}
        with self.fs.open(self.PATH, "r") as f:
            for t, k, v in json.load(f):
                secrets[t, binascii.a2b_base64(k)] = binascii.a2b_base64(v)
        self.secrets = secrets
        return secrets


class ZmsStore:
    """The same secrets as ZMS records: one record per (peer, secret type)."""

    def __init__(self, flash):
        self.z = ZMS(flash)
        self.peers = {}

    def set(self, sec_type, key, value):
        if sec_type == OUR_IRK:
            self.z.write(IRK_RECORD, value)
            return
        peer = self.peers.setdefault(key, len(self.peers))
        self.z.write(peer << 16 | DATA_ID[sec_type], value)


def bond_key(i):
    return bytes((0, 0xC0 | (i >> 8), i & 0xFF, 0x11, 0x22, 0x33, 0x44))  # type + LSB-first address


def populate(store, bonds):
    store.set(OUR_IRK, b"irk", os.urandom(16))
    for i in range(bonds):
        store.set(OUR_SEC, bond_key(i), os.urandom(SECRET))
        store.set(PEER_SEC, bond_key(i), os.urandom(SECRET))


def updates(store, bonds, count):
    for u in range(count):
        sec_type = OUR_SEC if (u // bonds) & 1 else PEER_SEC
        store.set(sec_type, bond_key(u % bonds), os.urandom(SECRET))


def update_costs():
    out = {}
    for name, make in (("zms", ZmsStore), ("json_lfs", JsonStore)):
        flash = new_flash()
        store = make(flash)
        populate(store, 16)
        flash.reset_counters()
        updates(store, 16, UPDATES)
        out[name] = flash
        print("bench: %s_bytes_per_update = %.1f bytes" % (name, flash.bytes_programmed / UPDATES))
        print("bench: %s_erases_per_1000_updates = %.1f erases" % (name, sum(flash.erases) * 1000 / UPDATES))
        print("bench: %s_max_sector_erases_per_1000_updates = %.1f erases" % (name, max(flash.erases) * 1000 / UPDATES))
        print("bench: %s_program_calls_per_update = %.2f calls" % (name, flash.programs / UPDATES))
        if flash.conflicts:
            print("%s: %d bytes programmed over non-erased bits" % (name, flash.conflicts))
    z, j = out["zms"], out["json_lfs"]
    print("bench: bytes_per_update_ratio_json_vs_zms = %.1f x" % (j.bytes_programmed / z.bytes_programmed))
    print("bench: erases_ratio_json_vs_zms = %.1f x" % (sum(j.erases) / max(1, sum(z.erases))))


def timed(fn, rounds=ROUNDS):
    """Best-of-3 mean time of fn() over `rounds` calls, in microseconds."""
    best = None
    for _ in range(3):
        gc.collect()
        t = time.ticks_us()
        for _ in range(rounds):
            fn()
        dt = time.ticks_diff(time.ticks_us(), t) / rounds
        best = dt if best is None or dt < best else best
    return best


def mount_costs():
    bonds = 32
    zflash = new_flash()
    zs = ZmsStore(zflash)
    populate(zs, bonds)
    updates(zs, bonds, UPDATES)  # a log with history, wrapped around the partition
    ids = [p << 16 | DATA_ID[t] for p in range(bonds) for t in (OUR_SEC, PEER_SEC)] + [IRK_RECORD]

    jflash = new_flash()
    js = JsonStore(jflash)
    populate(js, bonds)
    size = js.fs.stat(JsonStore.PATH)[6]
    mounted = JsonStore(jflash, fresh=False)

    def zms_index():
        z = ZMS(zflash)
        assert len(z.ids()) == len(ids)

    def zms_index_read_all():
        z = ZMS(zflash)
        for k in z.ids():
            z.read(k)

    def json_load():  # file system already mounted, as on a board
        assert len(mounted.load()) == 2 * bonds + 1

    def json_mount_load():
        assert len(JsonStore(jflash, fresh=False).load()) == 2 * bonds + 1

    t_zms = timed(zms_index)
    t_zms_all = timed(zms_index_read_all)
    t_json = timed(json_load)
    t_json_mount = timed(json_mount_load)
    print("32 bonds: JSON file %d bytes; ZMS log with %d live records" % (size, len(ids)))
    zflash.reset_counters()
    zms_index()
    jflash.reset_counters()
    json_load()
    print("bench: zms_mount_index_bytes_read = %d bytes" % zflash.bytes_read)
    print("bench: json_load_bytes_read = %d bytes" % jflash.bytes_read)
    print("bench: zms_mount_index_32_bonds = %.0f us" % t_zms)
    print("bench: zms_mount_index_read_all_32_bonds = %.0f us" % t_zms_all)
    print("bench: json_load_32_bonds = %.0f us" % t_json)
    print("bench: json_mount_load_32_bonds = %.0f us" % t_json_mount)
    print("bench: mount_index_time_ratio_zms_vs_json = %.2f x" % (t_zms / t_json))
    print("bench: mount_read_all_time_ratio_zms_vs_json = %.2f x" % (t_zms_all / t_json))

    mounted.secrets = None
    gc.collect()
    before = gc.mem_alloc()
    z = ZMS(zflash)
    gc.collect()
    print("bench: zms_mounted_ram = %d bytes" % (gc.mem_alloc() - before))
    del z
    gc.collect()
    before = gc.mem_alloc()
    secrets = mounted.load()
    gc.collect()
    print("bench: json_loaded_ram_32_bonds = %d bytes" % (gc.mem_alloc() - before))
    del secrets


print("storage: %d KiB flash, %d-byte sectors, write block 4; %d updates of %d-byte secrets"
      % (SIZE // 1024, SECTOR, UPDATES, SECRET))
update_costs()
mount_costs()
