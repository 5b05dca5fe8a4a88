"""bluetooth.UUID as extmod/modbluetooth.c defines it: 16, 32 or 128 bits, stored
little-endian (the buffer protocol gives those bytes), printed MSB-first."""


class UUID:
    def __init__(self, value):
        if isinstance(value, int):
            if value > 65535:
                raise ValueError("invalid UUID")
            self._d = bytes((value & 0xFF, (value >> 8) & 0xFF))
        elif isinstance(value, UUID):
            self._d = value._d
        elif isinstance(value, (bytes, bytearray, memoryview)) and len(value) in (2, 4, 16):
            self._d = bytes(value)
        else:
            s = value if isinstance(value, str) else str(bytes(value), "utf-8")
            digits = [c for c in s if c != "-"]
            for c in digits:
                if c not in "0123456789abcdefABCDEF":
                    raise ValueError("invalid char in UUID")
            if len(digits) > 32:
                raise ValueError("UUID too long")
            if len(digits) < 32:
                raise ValueError("UUID too short")
            self._d = bytes(reversed(bytes.fromhex("".join(digits))))

    def __iter__(self):  # lets bytes(uuid) work like the C buffer protocol
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def __eq__(self, other):
        return isinstance(other, UUID) and self._d == other._d

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self._d)

    def __repr__(self):
        h = bytes(reversed(self._d)).hex()
        if len(self._d) <= 4:
            return "UUID(0x%s)" % h
        return "UUID('%s-%s-%s-%s-%s')" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])

    __str__ = __repr__
