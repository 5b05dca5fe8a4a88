# Plain-Python reference of nimble.py's viper helper, for tests/mp_nimble.py.


def reverse_into_ref(dst, at, src, off, n):
    """dst[at:at+n] = src[off:off+n] reversed."""
    for i in range(n):
        dst[at + i] = src[off + n - 1 - i]
