# A ZMS writer that does what upstream Zephyr ZMS does on NOR flash (FACTS §1 and
# the algorithm of zms_init/zms_write/zms_sector_close/zms_gc), written here
# independently of aioble_pm.zms, to make images "the way another implementation
# would": only sector 0 is formatted at first mount (other sectors stay without a
# header until the log reaches them), a closing sector has its free ATE slots
# programmed with 0xFF "garbage" ATEs, the new sector is erased only if it has no
# valid empty ATE, and the collected sector is erased (and given an empty ATE) even
# when it was not closed. Data CRC on. For tests/mp_zms_foreign.py.
import binascii
import zms_ref

HEAD = 0xFFFFFFFF


def _ate(cycle, ident, length, tail):
    b = bytearray(16)
    b[1] = cycle
    b[2] = length & 0xFF
    b[3] = length >> 8
    for i in range(4):
        b[4 + i] = (ident >> (8 * i)) & 0xFF
    b[8:16] = tail
    b[0] = zms_ref._crc8_ref(b, 1, 16)
    return b


def _le32(v):
    return bytes((v >> s) & 0xFF for s in (0, 8, 16, 24))


class Upstream:
    def __init__(self, flash):
        self.f = flash
        self.S = flash.sector_size
        self.n = flash.size // self.S
        self.wb = flash.write_block
        self.A = max(16, self.wb)
        self.newest = {}  # id -> address of its newest ATE (what upstream's search finds)
        self.values = {}
        # first mount of a blank partition: sector 0 gets an empty ATE, then gc_done
        self.f.erase(0)
        self._empty(0)
        self.cycle = self._cycle_of(0)
        self.ate_wra = self.S - 3 * self.A
        self.data_wra = 0
        self._gc_done()

    def _prog_ate(self, addr, b):
        self.f.program(addr, bytes(b) + b"\xff" * (self.A - 16))

    def _cycle_of(self, s):
        buf = bytearray(16)
        self.f.read(s * self.S + self.S - self.A, buf)
        if zms_ref._crc8_ref(buf, 1, 16) == buf[0] and buf[2] == buf[3] == 0xFF:
            return buf[1]
        return -1

    def _empty(self, s):
        old = self._cycle_of(s)
        cyc = (max(old, 0) + 1) & 0xFF
        self._prog_ate(s * self.S + self.S - self.A, _ate(cyc, HEAD, 0xFFFF, _le32(0) + bytes((1, 0x42, 0, 0))))

    def _append_ate(self, b, ident=None):
        self._prog_ate(self.ate_wra, b)
        if ident is not None:
            self.newest[ident] = self.ate_wra
        self.ate_wra -= self.A

    def _gc_done(self):
        self._append_ate(_ate(self.cycle, HEAD, 0, _le32(self.data_wra % self.S) + b"\xff" * 4))

    def _al(self, n):
        return (n + self.wb - 1) // self.wb * self.wb

    def _data(self, data):
        n = len(data)
        self.f.program(self.data_wra, bytes(data) + b"\xff" * (self._al(n) - n))
        self.data_wra += self._al(n)

    def write(self, ident, data):
        n = len(data)
        need = 0 if n == 0 else (self._al(n) + self.A if n > 8 else self.A)
        for _ in range(self.n):
            off = self.ate_wra % self.S
            if off and self.ate_wra >= self.data_wra + need and ((off - self.A) or n == 0):
                if n > 8:
                    tail = _le32(self.data_wra % self.S) + _le32(binascii.crc32(data))
                    self._data(data)
                else:
                    tail = bytes(data) + bytes(8 - n)
                self._append_ate(_ate(self.cycle, ident, n, tail), ident)
                if n:
                    self.values[ident] = bytes(data)
                else:
                    self.values.pop(ident, None)
                return True
            self._close()
            self._gc()
        return False

    def _close(self):
        s = self.ate_wra // self.S
        close = _ate(self.cycle, HEAD, 0, _le32(self.ate_wra % self.S + self.A) + b"\xff" * 4)
        while self.ate_wra % self.S and self.ate_wra >= self.data_wra:
            self._append_ate(b"\xff" * 16)  # garbage ATEs: the erase value
        self._prog_ate(s * self.S + self.S - 2 * self.A, close)
        s = (s + 1) % self.n
        self.ate_wra = s * self.S + self.S - 3 * self.A
        self.data_wra = s * self.S
        self.cycle = max(self._cycle_of(s), 0)

    def _gc(self):
        s = self.ate_wra // self.S
        if self._cycle_of(s) < 0:
            self.f.erase(s)
            self._empty(s)
        self.cycle = self._cycle_of(s)
        g = (s + 1) % self.n
        gb = g * self.S
        hdr = bytearray(32)
        self.f.read(gb + self.S - 2 * self.A, memoryview(hdr)[0:16])
        self.f.read(gb + self.S - self.A, memoryview(hdr)[16:32])
        gcyc = self._cycle_of(g)
        closed = (gcyc >= 0 and zms_ref._crc8_ref(hdr, 1, 16) == hdr[0] and hdr[1] == gcyc
                  and hdr[2] == hdr[3] == 0)
        if closed:
            x = hdr[8] | hdr[9] << 8 | hdr[10] << 16
            while x <= self.S - 3 * self.A:
                a = bytearray(16)
                self.f.read(gb + x, a)
                ident = a[4] | a[5] << 8 | a[6] << 16 | a[7] << 24
                n = a[2] | a[3] << 8
                if (a[1] == gcyc and zms_ref._crc8_ref(a, 1, 16) == a[0] and ident != HEAD and n
                        and self.newest.get(ident) == gb + x):
                    if n > 8:
                        src = gb + (a[8] | a[9] << 8 | a[10] << 16)
                        buf = bytearray(self._al(n))
                        self.f.read(src, buf)
                        a[8:12] = _le32(self.data_wra % self.S)
                        self.f.program(self.data_wra, buf)
                        self.data_wra += len(buf)
                    a[1] = self.cycle
                    a[0] = zms_ref._crc8_ref(a, 1, 16)
                    self._append_ate(a, ident)
                x += self.A
        self._gc_done()
        self.f.erase(g)
        self._empty(g)
