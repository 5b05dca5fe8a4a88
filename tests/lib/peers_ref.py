# Plain-Python references of peers.py's viper helpers, for tests/mp_peers.py.
_ENTRY = 9  # index entry: flags, key_size, NimBLE key (7 bytes)
_USED = 0x01
_KEY = 2


def find_key_ref(index, n, key):
    """Peer ID whose used index entry holds this 7-byte NimBLE key, or -1."""
    for pid in range(n):
        o = pid * _ENTRY
        if index[o] & _USED and index[o + _KEY : o + _KEY + 7] == bytes(key):
            return pid
    return -1


def nth_with_ref(index, n, sel, k):
    """Peer ID of the k-th index entry whose flags & (sel & 0xFF) == sel >> 8, or -1."""
    for pid in range(n):
        if index[pid * _ENTRY] & sel & 0xFF == sel >> 8:
            if k == 0:
                return pid
            k -= 1
    return -1
