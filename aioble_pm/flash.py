"""Flash adapters with NOR semantics, the medium under the record store (zms.py).

Every adapter has `size`, `sector_size` (the erase unit), `write_block` (program
alignment) and three operations:

    read(off, buf)      fill buf (bytearray/memoryview) from byte offset off
    program(off, data)  NOR program: each byte becomes old & new (bits only go 1 -> 0);
                        off and len(data) must be multiples of write_block
    erase(sector)       set every byte of sector number `sector` to 0xFF

FileFlash keeps the image in a file; BlockDevFlash drives a MicroPython block device
with the extended interface, such as esp32.Partition; RamFlash (ramflash.py, loaded when
first named here) simulates flash in RAM (tests, volatile use) with counters and fault
injection.
"""
import micropython
from micropython import const

_EIO = const(5)
_CHUNK = const(256)  # bytes per step when a program or erase is done piecewise


def _geometry(size, sector_size, write_block):
    for name, v in (("size", size), ("sector_size", sector_size), ("write_block", write_block)):
        if not isinstance(v, int) or v <= 0:
            raise ValueError("%s must be a positive int, got %r" % (name, v))
    if write_block & (write_block - 1) or write_block > 32:
        raise ValueError("write_block must be a power of two <= 32, got %d" % write_block)
    if sector_size % write_block:
        raise ValueError("sector_size %d is not a multiple of write_block %d" % (sector_size, write_block))
    if size % sector_size:
        raise ValueError("size %d is not a multiple of sector_size %d" % (size, sector_size))


class _Nor:
    """Argument checks shared by the adapters."""

    def _range(self, off, n):
        if off < 0 or off + n > self.size:
            raise ValueError("range %d..%d outside flash of %d bytes" % (off, off + n, self.size))

    def _aligned(self, off, n):
        self._range(off, n)
        wb = self.write_block
        if off % wb or n % wb:
            raise ValueError("program at %d of %d bytes is not aligned to write_block %d" % (off, n, wb))

    def _sector(self, sector):
        if not isinstance(sector, int) or not 0 <= sector < self.size // self.sector_size:
            raise ValueError("sector %r outside 0..%d" % (sector, self.size // self.sector_size - 1))
        return sector * self.sector_size


# dst[doff + i] &= src[i] for i < n; returns how many bytes could not take the new
# value because a bit would have had to go from 0 to 1 (oracle: tests/lib/zms_ref.py).
@micropython.viper
def _nor(dst: ptr8, doff: int, src: ptr8, n: int) -> int:
    bad = 0
    i = 0
    while i < n:
        old = dst[doff + i]
        new = src[i]
        if (old & new) != new:
            bad += 1
        dst[doff + i] = old & new
        i += 1
    return bad


class FileFlash(_Nor):
    """Flash image kept in a file; a missing file is created erased (all 0xFF).

    Each program/erase is flushed to the file system before it returns. An existing
    file of another size is refused (ValueError) rather than resized. First boot is
    atomic: the erased image is written to `path + ".new"` and renamed to `path` once
    complete, so a power cut while creating it leaves no file (or a leftover ".new"
    that the next boot writes again), never a short image."""

    def __init__(self, path, size, sector_size=4096, write_block=4):
        if type(path) is not str:
            raise TypeError("path must be a str, not %s" % type(path).__name__)
        _geometry(size, sector_size, write_block)
        import os

        self.size = size
        self.sector_size = sector_size
        self.write_block = write_block
        self.path = path
        self._buf = bytearray(_CHUNK)
        try:
            have = os.stat(path)[6]
        except OSError:
            have = -1
        if have < 0:
            ff = b"\xff" * _CHUNK
            tmp = path + ".new"
            with open(tmp, "wb") as f:
                left = size
                while left:
                    k = min(left, _CHUNK)
                    f.write(ff if k == _CHUNK else ff[0:k])
                    left -= k
            os.rename(tmp, path)
        elif have != size:
            raise ValueError("%s holds %d bytes, expected %d" % (path, have, size))
        self._f = open(path, "r+b")

    def close(self):
        self._f.close()

    def read(self, off, buf):
        n = len(buf)
        self._range(off, n)
        self._f.seek(off)
        if self._f.readinto(buf) != n:
            raise OSError(_EIO, "short read from %s at %d" % (self.path, off))

    def program(self, off, data):
        n = len(data)
        self._aligned(off, n)
        src = memoryview(data)
        buf = self._buf
        f = self._f
        done = 0
        while done < n:
            k = min(n - done, _CHUNK)
            chunk = memoryview(buf)[0:k]
            f.seek(off + done)
            f.readinto(chunk)
            _nor(buf, 0, src[done : done + k], k)
            f.seek(off + done)
            f.write(chunk)
            done += k
        f.flush()

    def erase(self, sector):
        base = self._sector(sector)
        buf = self._buf
        for i in range(_CHUNK):
            buf[i] = 0xFF
        f = self._f
        f.seek(base)
        left = self.sector_size
        while left:
            k = min(left, _CHUNK)
            f.write(buf if k == _CHUNK else memoryview(buf)[0:k])
            left -= k
        f.flush()


class BlockDevFlash(_Nor):
    """Flash behind a MicroPython block device with the extended interface
    (`readblocks(n, buf, off)`, `writeblocks(n, buf, off)` programs without erasing,
    `ioctl(4)` block count, `ioctl(5)` block size, `ioctl(6, n)` erase block n),
    which is what esp32.Partition provides. `sector_size` must be a multiple of the
    device block size; reads and programs may span blocks, as the interface allows."""

    def __init__(self, bdev, sector_size=4096, write_block=4):
        if not hasattr(bdev, "ioctl") or not hasattr(bdev, "readblocks"):
            raise TypeError("bdev must be a block device (esp32.Partition-like), not %s" % type(bdev).__name__)
        bs = bdev.ioctl(5, 0)
        count = bdev.ioctl(4, 0)
        if not bs or sector_size % bs:
            raise ValueError("sector_size %d is not a multiple of the block size %r" % (sector_size, bs))
        size = count * bs // sector_size * sector_size
        _geometry(size, sector_size, write_block)
        self.size = size
        self.sector_size = sector_size
        self.write_block = write_block
        self._bdev = bdev
        self._bs = bs

    def read(self, off, buf):
        self._range(off, len(buf))
        self._bdev.readblocks(off // self._bs, buf, off % self._bs)

    def program(self, off, data):
        self._aligned(off, len(data))
        self._bdev.writeblocks(off // self._bs, data, off % self._bs)

    def erase(self, sector):
        first = self._sector(sector) // self._bs
        for block in range(first, first + self.sector_size // self._bs):
            if self._bdev.ioctl(6, block):
                raise OSError(_EIO, "erase of block %d failed" % block)


def default(size=32768, sector_size=4096, path="bonds.zms"):
    """The flash for bonds: the ESP32 data partition labelled "bonds" if the firmware's
    partition table has one, else a file image at `path` (created erased, `size`
    bytes: 8 sectors, like the ESP32 board's partition) on the current file system."""
    try:
        import esp32

        found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="bonds")
    except (ImportError, AttributeError):
        found = None
    if found:
        return BlockDevFlash(found[0], sector_size)
    return FileFlash(path, size, sector_size)


def __getattr__(name):
    if name == "RamFlash" or name == "PowerCut":  # tests and volatile stores only
        from . import ramflash

        return getattr(ramflash, name)
    raise AttributeError(name)
