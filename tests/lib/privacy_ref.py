# Plain-Python references of privacy.py's viper helpers, for tests/mp_privacy.py.
KIND_STATIC = 1
KIND_RPA = 2
KIND_NRPA = 3
KIND_INVALID = 4
_HEADER = 8  # Resolver state: hits, misses, next hit, next miss (u16 LE each)
_ENTRY = 8  # cache entry: RPA (6 bytes), u16 LE slot
_MISS = 0xFFFF


def random_kind_ref(addr):
    """Kind of a random address from its 6 MSB-first bytes."""
    top = addr[0] >> 6
    if top == 2:
        return KIND_INVALID
    n = 3 if top == 1 else 6  # an RPA's random part is prand's low 22 bits only
    zeros = (addr[0] & 0x3F) == 0
    ones = (addr[0] & 0x3F) == 0x3F
    for i in range(1, n):
        zeros = zeros and addr[i] == 0
        ones = ones and addr[i] == 0xFF
    if zeros or ones:
        return KIND_INVALID
    return (KIND_NRPA, KIND_RPA, KIND_INVALID, KIND_STATIC)[top]


def _u16(buf, o):
    return buf[o] | buf[o + 1] << 8


def _set_u16(buf, o, v):
    buf[o] = v & 0xFF
    buf[o + 1] = (v >> 8) & 0xFF


def resolve_ref(state, aes, io, addr):
    """What resolve_slot() must return and leave in `state`: -2 not a valid RPA, -1 no
    IRK made it, else the IRK's slot; the caches are looked at first, the answer cached."""
    block, out = io
    if random_kind_ref(addr) != KIND_RPA:
        return -2
    hits = _u16(state, 0)
    total = hits + _u16(state, 2)
    for i in range(total):
        o = _HEADER + i * _ENTRY
        if state[o : o + 6] == bytes(addr[0:6]):
            slot = _u16(state, o + 6)
            return -1 if slot == _MISS else slot
    block[13:16] = bytes(addr[0:3])
    found = -1
    for i in range(len(aes)):
        aes[i].encrypt(block, out)
        if out[13:16] == bytes(addr[3:6]):
            found = i
            break
    if found >= 0:
        ring, first, size = 4, 0, hits
    else:
        ring, first, size = 6, hits, total - hits
    if size:
        nxt = _u16(state, ring)
        o = _HEADER + (first + nxt) * _ENTRY
        state[o : o + 6] = bytes(addr[0:6])
        _set_u16(state, o + 6, found if found >= 0 else _MISS)
        _set_u16(state, ring, (nxt + 1) % size)
    return found
