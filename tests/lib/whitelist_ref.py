# Plain-Python reference of whitelist.py's viper _find, for tests/mp_whitelist.py.
_ENTRY = 8
_F_ID_OK = 1


def find_ref(table, n, addr_type, addr, resolved):
    """Index of the entry with this identity address (that may match), or -1."""
    for i in range(n):
        o = i * _ENTRY
        if table[o] == addr_type and table[o + 1 : o + 7] == bytes(addr) and (resolved or table[o + 7] & _F_ID_OK):
            return i
    return -1
