"""RamFlash: flash simulated in RAM, with operation counters and fault injection (power
cuts with torn cells, bit rot, direct corruption) for tests, benchmarks and a volatile
store. Not loaded by the core on a board: `flash.RamFlash` imports it on first use.
"""
from .flash import _Nor, _geometry, _nor


class PowerCut(Exception):
    """Raised by RamFlash when its simulated power fails (see RamFlash.cut_after)."""


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
