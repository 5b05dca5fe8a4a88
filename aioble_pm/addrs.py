"""Bluetooth device addresses: types, kinds (public, random static, resolvable and
non-resolvable private) and the checks of `(addr_type, addr)` arguments. No
cryptography: the core tells an RPA from an identity without loading privacy.py (which
resolves and makes RPAs and re-exports these names).

Addresses are what MicroPython's IRQs carry: addr_type 0 public / 1 random, addr 6 bytes
MSB-first. Core spec Vol 6 Part B 1.3.
"""
import micropython
from micropython import const

ADDR_PUBLIC = const(0)
ADDR_RANDOM = const(1)

KIND_PUBLIC = const(0)
KIND_STATIC = const(1)  # random static: top bits 0b11
KIND_RPA = const(2)  # resolvable private: 0b01
KIND_NRPA = const(3)  # non-resolvable private: 0b00
KIND_INVALID = const(4)  # reserved top bits 0b10, or a random part all 0s / all 1s

_BUFFERS = (bytes, bytearray, memoryview)


def check_bytes(value, n, name):
    if type(value) not in _BUFFERS:
        raise TypeError("%s must be bytes-like, not %s" % (name, type(value).__name__))
    if len(value) != n:
        raise ValueError("%s must be %d bytes, got %d" % (name, n, len(value)))


def check_addr(addr_type, addr):
    """Raise TypeError/ValueError unless (addr_type, addr) is a well-formed address."""
    if not isinstance(addr_type, int):
        raise TypeError("addr_type must be an int, not %s" % type(addr_type).__name__)
    if addr_type != ADDR_PUBLIC and addr_type != ADDR_RANDOM:
        raise ValueError("addr_type must be 0 (public) or 1 (random), got %d" % addr_type)
    check_bytes(addr, 6, "addr")


def check_irk(irk):
    check_bytes(irk, 16, "irk")


@micropython.viper
def random_kind(addr: ptr8) -> int:
    """KIND_STATIC/RPA/NRPA/INVALID of a random address (6 bytes, MSB-first; not checked:
    callers check the length first; reference: tests/lib/privacy_ref.py). Viper: no call
    layer on matchers' hot paths."""
    top = addr[0] >> 6
    if top == 2:
        return 4  # KIND_INVALID
    n = 3 if top == 1 else 6
    b = addr[0] & 0x3F
    zeros = b == 0
    ones = b == 0x3F
    i = 1
    while i < n:
        b = addr[i]
        if b != 0:
            zeros = False
        if b != 0xFF:
            ones = False
        i += 1
    if zeros or ones:
        return 4
    if top == 1:
        return 2  # KIND_RPA
    if top == 3:
        return 1  # KIND_STATIC
    return 3  # KIND_NRPA


def kind(addr_type, addr):
    """KIND_PUBLIC, KIND_STATIC, KIND_RPA, KIND_NRPA or KIND_INVALID."""
    check_addr(addr_type, addr)
    if addr_type == ADDR_PUBLIC:
        return KIND_PUBLIC
    return random_kind(addr)


def is_rpa(addr_type, addr):
    return kind(addr_type, addr) == KIND_RPA


def is_identity(addr_type, addr):
    """True for addresses that identify a device for good: public or random static."""
    k = kind(addr_type, addr)
    return k == KIND_PUBLIC or k == KIND_STATIC
