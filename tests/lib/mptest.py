"""MicroPython-side helpers for test files (tests/mp_*.py).

Decorators `heapsize` and `timeout` are read by the host harness from the source (they
do nothing at run time); `skip`, `need` and `raises` act at run time.
"""
import os
import sys


class Skip(Exception):
    pass


def skip(reason):
    raise Skip(reason)


def need(module):
    """Import `module` or skip the test saying where it was looked for."""
    try:
        return __import__(module)
    except ImportError as e:
        if module not in str(e):
            raise  # it is there but broken: a failure, not a skip
        skip("%s not found on MICROPYPATH or in ~/.micropython/lib (see README: aioble for local runs)" % module)


def heapsize(size):
    """Run this test with `micropython -X heapsize=SIZE` (e.g. "64k")."""
    return lambda f: f


def timeout(seconds):
    """Allow this test SECONDS of wall time (default 60)."""
    return lambda f: f


class raises:
    """`with raises(ValueError, "irk"):` -- the block must raise that type, and the
    message must contain the given text."""

    def __init__(self, exc_type, match=None):
        self.exc_type = exc_type
        self.match = match
        self.value = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            raise AssertionError("%s not raised" % self.exc_type.__name__)
        if not issubclass(exc_type, self.exc_type):
            return False
        if self.match is not None and self.match not in str(exc):
            raise AssertionError("%s message %r lacks %r" % (exc_type.__name__, str(exc), self.match))
        self.value = exc
        return True


def eq(a, b, what=""):
    """assert a == b, showing both values."""
    if a != b:
        raise AssertionError("%s%r != %r" % (what + ": " if what else "", a, b))


def randbytes(n):
    return os.urandom(n)


def hexb(h):
    import binascii

    return binascii.unhexlify(h.replace(" ", "").replace(":", ""))
