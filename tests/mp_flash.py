# Flash adapters (aioble_pm/flash.py): NOR semantics, fault injection, counters,
# the file image, the block-device adapter and default().
import os
import sys
from mptest import raises, eq
from aioble_pm import flash
import zms_ref
from aioble_pm.flash import RamFlash, FileFlash, BlockDevFlash, PowerCut


def test_ram_starts_erased_and_programs_like_nor():
    f = RamFlash(2048, sector_size=512, write_block=4)
    eq(f.image(), b"\xff" * 2048)
    f.program(8, b"\xf0\x0f\xaa\x55")
    f.program(8, b"\x3c\x3c\xff\xff")  # AND with what is there
    buf = bytearray(4)
    f.read(8, buf)
    eq(bytes(buf), b"\x30\x0c\xaa\x55")
    eq(f.conflicts, 4, "bytes that wanted a 0->1 bit")
    f.erase(0)
    f.read(8, buf)
    eq(bytes(buf), b"\xff" * 4)
    eq(f.erases, [1, 0, 0, 0])
    eq((f.ops, f.programs, f.bytes_programmed), (3, 2, 8))


def test_ram_alignment_bounds_and_geometry_errors():
    f = RamFlash(1024, sector_size=256, write_block=8)
    with raises(ValueError, "aligned"):
        f.program(4, b"12345678")
    with raises(ValueError, "aligned"):
        f.program(8, b"1234")
    with raises(ValueError, "outside"):
        f.program(1024, b"12345678")
    with raises(ValueError, "outside"):
        f.read(1020, bytearray(8))
    with raises(ValueError, "sector"):
        f.erase(4)
    with raises(ValueError, "multiple of sector_size"):
        RamFlash(1000, sector_size=256)
    with raises(ValueError, "power of two"):
        RamFlash(1024, sector_size=256, write_block=3)
    with raises(ValueError, "image"):
        RamFlash(1024, sector_size=256, image=b"\0" * 10)


def test_ram_reads_into_memoryview_and_counts():
    f = RamFlash(1024, sector_size=256)
    f.program(0, b"abcdefgh")
    b = bytearray(8)
    f.read(2, memoryview(b)[0:4])
    eq(bytes(b[0:4]), b"cdef")
    eq((f.reads, f.bytes_read), (1, 4))
    f.reset_counters()
    eq((f.reads, f.ops, f.bytes_programmed, f.erases), (0, 0, 0, [0, 0, 0, 0]))


def test_cut_after_whole_operations():
    f = RamFlash(1024, sector_size=256)
    f.cut_after(2)
    f.program(0, b"1111")
    f.erase(1)
    with raises(PowerCut, "program"):
        f.program(4, b"2222")
    eq(f.image()[4:8], b"\xff" * 4, "the cut program lands nothing")
    with raises(PowerCut, "without power"):
        f.program(8, b"3333")
    with raises(PowerCut):
        f.erase(0)
    f.power_on()
    f.program(8, b"3333")
    eq(f.image()[0:12], b"1111\xff\xff\xff\xff3333")
    eq(f.ops, 3)


def test_cut_partial_program_lands_prefix():
    f = RamFlash(1024, sector_size=256)
    f.cut_after(0, partial=3)
    with raises(PowerCut, "3 of 8"):
        f.program(16, b"ABCDEFGH")
    eq(f.image()[16:24], b"ABC\xff\xff\xff\xff\xff")
    f.power_on()
    f.cut_after(0, partial=99)  # all bytes land, but power fails before it returns
    with raises(PowerCut):
        f.program(32, b"abcd")
    eq(f.image()[32:36], b"abcd")
    eq(f.ops, 0, "interrupted operations are not counted")


def test_cut_partial_erase_and_cancel():
    f = RamFlash(1024, sector_size=256)
    f.program(256, b"\0" * 256)
    f.cut_after(0, partial=100)
    with raises(PowerCut, "erase"):
        f.erase(1)
    img = f.image()
    eq(img[256:356], b"\xff" * 100)
    eq(img[356:512], b"\0" * 156)
    f.power_on()
    f.cut_after(0)
    f.cut_after(None)
    f.erase(1)
    eq(f.image()[256:512], b"\xff" * 256)


def test_flip_poke_and_images():
    f = RamFlash(512, sector_size=256)
    f.flip(5, 0)
    f.flip(6, 7)
    eq(f.image()[5:7], b"\xfe\x7f")
    f.poke(100, b"\x12\x34")  # may set bits, unlike program
    f.poke(100, b"\xff\x00")
    eq(f.image()[100:102], b"\xff\x00")
    g = RamFlash.from_image(f.image(), sector_size=256, write_block=4)
    eq(g.image(), f.image())
    eq((g.size, g.sector_size, g.write_block), (512, 256, 4))
    g.program(0, b"\0\0\0\0")
    eq(f.image()[0:4], b"\xff" * 4, "from_image copies")


def test_nor_viper_matches_reference():
    for trial in range(300):
        n = 1 + trial % 40
        old = bytearray(os.urandom(n + 8))
        if trial % 3 == 0:
            old = bytearray(b"\xff" * (n + 8))
        src = os.urandom(n)
        if trial % 5 == 0:
            src = b"\x00\x80\xff\x7f" * (n // 4 + 1)
            src = src[0:n]
        a = bytearray(old)
        b = bytearray(old)
        off = trial % 8
        eq(flash._nor(a, off, src, n), zms_ref._nor_ref(b, off, src, n), "conflict count")
        eq(a, b)


def test_file_flash_created_erased_and_persistent():
    f = FileFlash("img.bin", 2048, sector_size=512, write_block=4)
    eq(os.stat("img.bin")[6], 2048)
    b = bytearray(2048)
    f.read(0, b)
    eq(bytes(b), b"\xff" * 2048)
    f.program(512, b"\x0f" * 300)  # more than one internal chunk
    f.program(512, b"\xf3" * 4)
    f.close()
    g = FileFlash("img.bin", 2048, sector_size=512)
    b = bytearray(8)
    g.read(512, b)
    eq(bytes(b), b"\x03\x03\x03\x03\x0f\x0f\x0f\x0f")
    g.erase(1)
    g.read(512, b)
    eq(bytes(b), b"\xff" * 8)
    with raises(ValueError, "aligned"):
        g.program(2, b"1234")
    g.close()
    with raises(ValueError, "holds 2048 bytes"):
        FileFlash("img.bin", 4096, sector_size=512)


class RamBlockDev:
    """A block device with the extended interface, as esp32.Partition offers it."""

    def __init__(self, block_size, blocks):
        self.bs = block_size
        self.data = bytearray(b"\xff" * (block_size * blocks))
        self.blocks = blocks
        self.calls = []

    def readblocks(self, n, buf, off=0):
        a = n * self.bs + off
        buf[0 : len(buf)] = self.data[a : a + len(buf)]

    def writeblocks(self, n, buf, off=None):
        assert off is not None, "the adapter must use the no-erase extended write"
        a = n * self.bs + off
        self.calls.append(("write", n, off, len(buf)))
        for i in range(len(buf)):
            self.data[a + i] &= buf[i]

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.bs
        if op == 6:
            self.calls.append(("erase", arg))
            for i in range(arg * self.bs, (arg + 1) * self.bs):
                self.data[i] = 0xFF
            return 0
        return None


def test_blockdev_adapter_maps_offsets_and_erases_blocks():
    dev = RamBlockDev(512, 16)
    f = BlockDevFlash(dev, sector_size=2048, write_block=4)
    eq((f.size, f.sector_size), (8192, 2048))
    f.program(2048 + 508, b"ABCDEFGH")  # spans blocks 4 and 5
    eq(dev.calls[-1], ("write", 4, 508, 8))
    b = bytearray(8)
    f.read(2048 + 508, b)
    eq(bytes(b), b"ABCDEFGH")
    f.program(2048 + 508, b"\x00\xff\x00\xff\xff\xff\xff\xff")
    f.read(2048 + 508, b)
    eq(bytes(b), b"\x00B\x00DEFGH")
    dev.calls = []
    f.erase(1)
    eq(dev.calls, [("erase", 4), ("erase", 5), ("erase", 6), ("erase", 7)])
    f.read(2048 + 508, b)
    eq(bytes(b), b"\xff" * 8)
    with raises(ValueError, "multiple of the block size"):
        BlockDevFlash(dev, sector_size=1000)


def test_blockdev_erase_failure_is_an_oserror():
    dev = RamBlockDev(512, 8)
    dev.ioctl = lambda op, arg: {4: 8, 5: 512}.get(op, -5)
    f = BlockDevFlash(dev, sector_size=1024)
    with raises(OSError, "erase of block 2"):
        f.erase(1)


def test_default_is_a_file_image_without_esp32():
    sys.modules.pop("esp32", None)
    f = flash.default(size=8192, sector_size=4096)
    assert isinstance(f, FileFlash), f
    eq(f.path, "bonds.zms")
    eq(os.stat("bonds.zms")[6], 8192)
    f.close()


def test_default_uses_the_bonds_partition_on_esp32():
    dev = RamBlockDev(4096, 4)
    wanted = []

    class Partition:
        TYPE_DATA = 1

        @staticmethod
        def find(kind, label=None):
            wanted.append((kind, label))
            return [dev] if label == "bonds" else []

    class FakeEsp32:
        pass

    FakeEsp32.Partition = Partition
    sys.modules["esp32"] = FakeEsp32
    try:
        f = flash.default()
    finally:
        del sys.modules["esp32"]
    assert isinstance(f, BlockDevFlash), f
    eq(wanted, [(1, "bonds")])
    eq((f.size, f.sector_size), (16384, 4096))


class _Cut(Exception):
    pass


def _cut_file_writes(after):
    """Make the next file writes fail after `after` of them landed (a power cut while
    a file is written: what was written stays); returns the function that undoes it."""
    import builtins

    real = builtins.open
    left = [after]

    class Cutting:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            if left[0] <= 0:
                raise _Cut("power cut")
            left[0] -= 1
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    def cutting_open(path, mode="r"):
        f = real(path, mode)
        return Cutting(f) if "w" in mode else f

    builtins.open = cutting_open
    return lambda: setattr(builtins, "open", real)


def test_file_flash_first_boot_survives_a_cut_at_every_write():
    # A power cut while FileFlash creates its image on first boot must not leave a
    # file that every later boot refuses: the image is written aside and renamed.
    from aioble_pm.zms import ZMS

    size = 4096
    writes = size // 256
    for after in range(writes + 1):
        for name in os.listdir():
            os.remove(name)
        undo = _cut_file_writes(after)
        try:
            FileFlash("bonds.zms", size, sector_size=512)
            cut = False
        except _Cut:
            cut = True
        finally:
            undo()
        eq(cut, after < writes, "cut after %d writes" % after)
        f = FileFlash("bonds.zms", size, sector_size=512)  # the next boot
        buf = bytearray(size)
        f.read(0, buf)
        eq(bytes(buf), b"\xff" * size, "after %d writes: an erased image" % after)
        z = ZMS(f)
        z.write(1, b"bond")
        f.close()
        eq(ZMS(FileFlash("bonds.zms", size, sector_size=512)).read(1), b"bond")
        eq(sorted(os.listdir()), ["bonds.zms"], "no leftover")


def _torn_run(seed, erase):
    f = RamFlash(1024, sector_size=512, write_block=8)
    f.program(0, bytes((i * 37) & 0xFF for i in range(512)))
    before = f.image()
    f.cut_after(0, 16, torn=seed)
    try:
        if erase:
            f.erase(0)
        else:
            f.program(0, bytes(64))
    except PowerCut:
        pass
    return before, f.image()


def test_torn_cells_follow_the_model_and_replay_from_the_seed():
    torn_bytes = 0
    for seed in range(50):
        old, img = _torn_run(seed, False)
        eq(_torn_run(seed, False)[1], img, "same seed, same tear")
        eq(img[0:16], bytes(16), "the landed prefix")
        for i in range(16, 512):
            assert img[i] & old[i] == img[i], "a torn program only clears bits"
            if i >= 16 + 16:
                eq(img[i], old[i], "bytes past the tear keep their value")
            elif img[i] != old[i] and img[i] != 0:
                torn_bytes += 1
        old, img = _torn_run(seed, True)
        eq(_torn_run(seed, True)[1], img)
        eq(img[0:16], b"\xff" * 16, "the erased prefix")
        for i in range(16, 512):
            assert img[i] | old[i] == img[i], "a torn erase only sets bits"
        eq(img[512:], old[512:], "other sectors untouched")
    assert torn_bytes > 20, "some bytes end half-programmed: %d" % torn_bytes
    assert _torn_run(1, True)[1] != _torn_run(2, True)[1], "seeds differ"


def test_read_back_rot_flips_copies_not_the_image():
    f = RamFlash(1024, sector_size=512)
    f.rot(200000, seed=3)
    buf = bytearray(512)
    f.read(0, buf)
    assert buf != b"\xff" * 512, "some bits flipped in the copy"
    eq(f.image(), b"\xff" * 1024, "the stored image is unchanged")
    f.rot(0)
    f.read(0, buf)
    eq(bytes(buf), b"\xff" * 512)
    with raises(ValueError, "per_million"):
        f.rot(-1)
    with raises(TypeError, "torn"):
        f.cut_after(1, None, torn="x")
