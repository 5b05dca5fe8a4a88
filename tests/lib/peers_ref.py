# Plain-Python references of peers.py's viper helpers, for tests/mp_peers.py.
_ENTRY = 9  # index entry: flags, key_size, NimBLE key (7 bytes)
_USED = 0x01
_KEY = 2


def lowest_free_ref(bitmap, n):
    """Lowest clear bit among the first n of the ID bitmap, or -1."""
    for i in range(n):
        if not bitmap[i >> 3] & (1 << (i & 7)):
            return i
    return -1


def find_key_ref(index, n, key):
    """Peer ID whose used index entry holds this 7-byte NimBLE key, or -1."""
    for pid in range(n):
        o = pid * _ENTRY
        if index[o] & _USED and index[o + _KEY : o + _KEY + 7] == bytes(key):
            return pid
    return -1


def nth_with_ref(index, n, flag, k):
    """Peer ID of the k-th used index entry with this flag, or -1."""
    for pid in range(n):
        if index[pid * _ENTRY] & flag:
            if k == 0:
                return pid
            k -= 1
    return -1
