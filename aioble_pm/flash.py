"""Flash adapters with NOR semantics, the medium under the record store (zms.py).

Every adapter has `size`, `sector_size` (the erase unit), `write_block` (program
alignment) and three operations:

    read(off, buf)      fill buf (bytearray/memoryview) from byte offset off
    program(off, data)  NOR program: each byte becomes old & new (bits only go 1 -> 0);
                        off and len(data) must be multiples of write_block
    erase(sector)       set every byte of sector number `sector` to 0xFF

RamFlash simulates flash in RAM (tests, volatile use) with counters and fault
injection; FileFlash keeps the image in a file; BlockDevFlash drives a MicroPython
block device with the extended interface, such as esp32.Partition.
"""
import micropython
from micropython import const

_EIO = const(5)
_CHUNK = const(256)  # bytes per step when a program or erase is done piecewise


class PowerCut(Exception):
    """Raised by RamFlash when its simulated power fails (see RamFlash.cut_after)."""


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


class RamFlash(_Nor):
    """Flash simulated in a bytearray, erased (0xFF) at creation unless `image` is given.

    Counters (reset_counters() zeroes them): `ops` program+erase operations completed,
    `programs`, `bytes_programmed`, `erases` (list, one count per sector), `reads`,
    `bytes_read`, and `conflicts`: bytes a program could not set as asked because a bit
    was already 0 (a correct NOR client keeps this at 0).

    Fault injection: `cut_after(n, partial, torn)` makes the power fail during a later
    program/erase; `rot(per_million, seed)` flips bits on read-back; `flip(off, bit)` and
    `poke(off, data)` corrupt the image directly.

    Torn-cell model (`cut_after(n, partial, torn=seed)`), what real NOR flash leaves
    when the power fails mid-operation, drawn from a generator seeded with `seed` so a
    failure replays exactly:
      * program: the first `partial` bytes land (0 if None); the next t bytes (t drawn
        in 1..2 * write_block, at most what is left) each get a random subset of the
        bits the program was clearing cleared; the bytes after them keep their old value;
      * erase: each byte of the sector independently ends erased (0xFF), old, or old
        with random bits set (old | r), in proportions drawn per cut (from almost all
        erased to almost all old), so a sector may look erased but for a few bytes.
    Without `torn`, a cut lands an exact prefix (`partial` bytes) and nothing else.
    """

    def __init__(self, size, sector_size=4096, write_block=4, image=None):
        _geometry(size, sector_size, write_block)
        self.size = size
        self.sector_size = sector_size
        self.write_block = write_block
        if image is None:
            self._mem = bytearray(b"\xff" * size)
        else:
            if len(image) != size:
                raise ValueError("image has %d bytes, size is %d" % (len(image), size))
            self._mem = bytearray(image)
        self._mv = memoryview(self._mem)
        self._ff = b"\xff" * sector_size
        self._cut = -1
        self._partial = None
        self._torn = None
        self._rot = 0
        self._rng = 1
        self._off = False
        self.reset_counters()

    @classmethod
    def from_image(cls, image, sector_size=4096, write_block=4):
        """A RamFlash holding a copy of `image` (bytes-like)."""
        return cls(len(image), sector_size, write_block, image)

    def image(self):
        """A copy of the whole flash content."""
        return bytes(self._mem)

    def reset_counters(self):
        self.ops = 0
        self.programs = 0
        self.bytes_programmed = 0
        self.conflicts = 0
        self.erases = [0] * (self.size // self.sector_size)
        self.reads = 0
        self.bytes_read = 0

    def cut_after(self, n_ops, partial=None, torn=None):
        """Let `n_ops` more program/erase operations complete, then fail the next one
        with PowerCut. With `partial=k` that operation first lands its first k bytes (a
        program: a prefix of its data; an erase: the first k bytes of the sector become
        0xFF). With `torn=seed` (an int) the cut also tears cells as the class docstring
        describes. After the cut every program/erase raises PowerCut until power_on().
        `cut_after(None)` cancels a pending cut."""
        if torn is not None and not isinstance(torn, int):
            raise TypeError("torn must be an int seed or None")
        self._cut = -1 if n_ops is None else self.ops + n_ops
        self._partial = partial
        self._torn = torn
        if torn is not None:
            self._rng = (torn * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF or 1

    def rot(self, per_million, seed=1):
        """Bit rot on read-back: each byte read has `per_million` / 10**6 odds of one
        flipped bit in the copy returned (the stored image is not changed). 0 stops it."""
        if not isinstance(per_million, int) or not 0 <= per_million <= 1000000:
            raise ValueError("per_million must be an int in 0..1000000")
        self._rot = per_million
        self._rng = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF or 1
        # only a rotting flash pays for it: read() stays as fast as without
        if per_million:
            self.read = self._read_rot
        elif "read" in self.__dict__:
            del self.read

    def _read_rot(self, off, buf):
        RamFlash.read(self, off, buf)
        for i in range(len(buf)):
            if self._rand(1000000) < self._rot:
                buf[i] ^= 1 << self._rand(8)

    def _rand(self, n):
        # xorshift32: a private generator, so fault draws do not depend on `random`
        x = self._rng
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._rng = x
        return x % n

    def power_on(self):
        """Restore power after a cut (the content stays as the cut left it)."""
        self._off = False
        self._cut = -1

    def _landing(self, n):
        # Bytes of an n-byte operation that land; raises PowerCut if the power is off.
        if self._off:
            raise PowerCut("flash is without power (call power_on())")
        if self.ops != self._cut:
            return n
        self._off = True
        return 0 if self._partial is None else min(self._partial, n)

    def read(self, off, buf):
        n = len(buf)
        if off < 0 or off + n > self.size:
            self._range(off, n)
        buf[0:n] = self._mv[off : off + n]
        self.reads += 1
        self.bytes_read += n

    def program(self, off, data):
        n = len(data)
        self._aligned(off, n)
        land = self._landing(n)
        if land:
            self.conflicts += _nor(self._mem, off, data, land)
        if self._off and self._torn is not None and land < n:
            mem = self._mem
            for i in range(land, land + min(n - land, 1 + self._rand(2 * self.write_block))):
                clear = mem[off + i] & ~data[i] & 0xFF  # bits this byte was to lose
                mem[off + i] &= ~(clear & self._rand(256)) & 0xFF
        if land < n or self._off:
            raise PowerCut("power cut in program #%d at %d (%d of %d bytes landed)" % (self.ops, off, land, n))
        self.ops += 1
        self.programs += 1
        self.bytes_programmed += n

    def erase(self, sector):
        base = self._sector(sector)
        n = self.sector_size
        land = self._landing(n)
        if land:
            self._mv[base : base + land] = memoryview(self._ff)[0:land]
        if self._off and self._torn is not None and land < n:
            self._tear_erase(base + land, n - land)
        if land < n or self._off:
            raise PowerCut("power cut in erase #%d of sector %d (%d of %d bytes erased)" % (self.ops, sector, land, n))
        self.ops += 1
        self.erases[sector] += 1

    def _tear_erase(self, lo, n):
        # per cut: odds (out of 64) that a byte ends erased, and that it keeps its value
        mem = self._mem
        p_ff = self._rand(65)
        p_old = self._rand(65 - p_ff)
        for i in range(lo, lo + n):
            r = self._rand(64)
            if r < p_ff:
                mem[i] = 0xFF
            elif r >= p_ff + p_old:
                mem[i] |= self._rand(256)

    def flip(self, off, bit):
        """Invert one bit (0..7) of the byte at `off`, bypassing NOR rules."""
        self._range(off, 1)
        self._mem[off] ^= 1 << (bit & 7)

    def poke(self, off, data):
        """Overwrite bytes at `off` with `data`, bypassing NOR rules (garbage, tests)."""
        self._range(off, len(data))
        self._mem[off : off + len(data)] = data


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
