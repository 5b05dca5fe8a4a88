"""bluetooth.UUID as extmod/modbluetooth.c defines it: 16, 32 or 128 bits, stored
little-endian (the buffer protocol gives those bytes), printed MSB-first. Any buffer
(str too) of 2, 4 or 16 bytes is taken as the raw value; other buffers are parsed as a
hex string ('-' skipped). UUIDs order like the C binary_op: by type (length) first,
then by their stored bytes."""


class UUID:
    def __init__(self, value):
        if isinstance(value, int):
            if value > 65535:
                raise ValueError("invalid UUID")
            self._d = bytes((value & 0xFF, (value >> 8) & 0xFF))
            return
        if isinstance(value, UUID):
            self._d = value._d
            return
        if isinstance(value, str):
            b = value.encode()
        elif isinstance(value, (bytes, bytearray, memoryview)):
            b = bytes(value)
        else:
            raise TypeError("object with buffer protocol required")
        if len(b) in (2, 4, 16):
            self._d = b
            return
        out = bytearray(16)
        i = 32  # nibbles left, filled from the most significant end
        for c in b:
            if c == 0x2D:  # '-'
                continue
            if 0x30 <= c <= 0x39:
                v = c - 0x30
            elif 0x41 <= c <= 0x46 or 0x61 <= c <= 0x66:
                v = (c | 0x20) - 0x61 + 10
            else:
                raise ValueError("invalid char in UUID")
            i -= 1
            if i < 0:
                raise ValueError("UUID too long")
            if i % 2 == 0:
                out[i // 2] |= v
            else:
                out[i // 2] = v << 4
        if i > 0:
            raise ValueError("UUID too short")
        self._d = bytes(out)

    def __iter__(self):  # lets bytes(uuid) work like the C buffer protocol
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def _cmp(self, other):
        """(len, bytes) pairs compare like modbluetooth.c's binary_op."""
        return (len(self._d), self._d), (len(other._d), other._d)

    def __eq__(self, other):
        return isinstance(other, UUID) and self._d == other._d

    def __ne__(self, other):
        return not self.__eq__(other)

    def __lt__(self, other):
        if not isinstance(other, UUID):
            return NotImplemented
        a, b = self._cmp(other)
        return a < b

    def __le__(self, other):
        if not isinstance(other, UUID):
            return NotImplemented
        a, b = self._cmp(other)
        return a <= b

    def __gt__(self, other):
        if not isinstance(other, UUID):
            return NotImplemented
        a, b = self._cmp(other)
        return a > b

    def __ge__(self, other):
        if not isinstance(other, UUID):
            return NotImplemented
        a, b = self._cmp(other)
        return a >= b

    def __hash__(self):
        return hash(self._d)

    def __repr__(self):
        h = bytes(reversed(self._d)).hex()
        if len(self._d) <= 4:
            return "UUID(0x%s)" % h
        return "UUID('%s-%s-%s-%s-%s')" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])

    __str__ = __repr__
