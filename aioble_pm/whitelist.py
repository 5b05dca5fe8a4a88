"""Whitelists (accept lists): the identity addresses and IRKs of chosen bonded peers,
matched fast against scan results and incoming connections (MicroPython's `bluetooth`
has no controller accept list or resolving list of its own to give them to).

Privacy modes (Core spec, HCI LE Set Privacy Mode; FACTS §4.1): in network privacy mode
(the default) a peer that gave us an IRK is recognised only by its RPAs, never by its
identity address seen over the air; device privacy mode (per list, or for chosen peers)
accepts its identity address too. Addresses the stack already resolved (the identity in
a connect IRQ) are matched with `resolved=True`. NRPAs and invalid random addresses never
match. Loaded by the first `PeerManager.whitelist()` (make(), which checks its arguments).
"""
import micropython
from micropython import const

from . import privacy
from .nimble import api_addr_type
from .privacy import resolve_slot, random_kind, check_addr

_ENTRY = const(8)  # addr_type, addr[6] MSB-first, flags
_F_ID_OK = const(1)  # the identity address may match over the air

# Builtins as module globals: native code finds them faster than builtins.
_type = type
_len = len
_str = str


# Bumped by PeerManager whenever a peer's identity or IRK comes or goes (any manager:
# a needless rebuild is harmless); a module global is the cheapest check per match().
_generation = 0


def changed():
    global _generation
    _generation += 1


def make(idm, db, peer_ids, limit, skip, device_privacy):
    """PeerManager.whitelist(): check the arguments, then a Whitelist over the ID manager."""
    if limit is not None and type(limit) is not int:
        raise TypeError("limit must be an int or None, not %s" % type(limit).__name__)
    if peer_ids is not None:
        if not isinstance(peer_ids, (list, tuple)):
            raise TypeError("peer_ids must be a list of peer IDs or None")
        for p in peer_ids:
            db.check(p)
        if len(set(peer_ids)) != len(peer_ids):
            raise ValueError("peer_ids has duplicates")
        peer_ids = list(peer_ids)
    if device_privacy is not True and device_privacy is not False:
        if not isinstance(device_privacy, (list, tuple)):
            raise TypeError("device_privacy must be True, False or a list of peer IDs, not %s"
                            % type(device_privacy).__name__)
        for p in device_privacy:
            if p not in db:
                raise ValueError("device_privacy names peer %r, which is not bonded" % (p,))
    wl = Whitelist(idm, peer_ids, skip, device_privacy)
    if limit is not None and len(wl) > limit:
        raise ValueError("%d peers, over limit=%d" % (len(wl), limit))
    return wl


@micropython.viper
def _find(table: ptr8, n: int, addr_type: int, addr: ptr8, resolved: int) -> int:
    """Index of the entry with this identity address (that may match), or -1
    (reference: tests/lib/whitelist_ref.py)."""
    a5 = addr[5]
    o = 0
    end = n * 8
    while o < end:
        if table[o + 6] == a5 and table[o] == addr_type:
            j = 0
            while j < 5:
                if table[o + 1 + j] != addr[j]:
                    break
                j += 1
            if j == 5 and (resolved or (table[o + 7] & 1)):
                return o >> 3
        o += 8
    return -1


class Whitelist:
    """Made by `PeerManager.whitelist()`. It stays correct when bonds change: each
    `match()` first checks the bond generation and rebuilds itself if bonds
    were added, re-keyed or deleted since (a list of all bonded peers then takes in new
    ones; an explicit list drops deleted peers)."""

    def __init__(self, source, peer_ids, skip, device_privacy):
        self._src = source  # the ID manager: peer_ids(skip), key(), identity(), irk()
        # None: every bonded peer; else {peer_id: NimBLE key} so that a deleted peer
        # whose ID is given to another one later does not come back
        self._wanted = None if peer_ids is None else {p: source.key(p) for p in peer_ids}
        self._order = peer_ids
        self._skip = skip
        self._device_privacy = device_privacy  # True, False, or a list of peer IDs
        self._gen = -1
        self._refresh()

    def _refresh(self):
        src = self._src
        ids = src.peer_ids(self._skip)
        if self._wanted is not None:
            w = self._wanted
            for p in list(w):
                if p not in ids or src.key(p) != w[p]:
                    del w[p]
            ids = [p for p in self._order if p in w]
        dp = self._device_privacy
        table = bytearray(len(ids) * _ENTRY)
        resolver = privacy.Resolver(hits=8, misses=16)
        for i, pid in enumerate(ids):
            addr_type, addr = src.identity(pid)
            irk = src.irk(pid)
            o = i * _ENTRY
            table[o] = addr_type
            table[o + 1 : o + 7] = addr
            if irk is None or dp is True or (dp and pid in dp):
                table[o + 7] = _F_ID_OK
            if irk is not None:
                resolver.add(pid, irk)
        self._ids = ids
        self._n = len(ids)
        self._table = table
        self._resolver = resolver
        # the resolver's tables, given to resolve_slot() by match() to spare a call per address
        self._state, self._aes, self._io, self._keys = resolver.tables()
        self._gen = _generation

    def __len__(self):
        self._check()
        return self._n

    def __contains__(self, peer_id):
        self._check()
        return peer_id in self._ids

    def __repr__(self):
        return "<Whitelist %d peers, %d IRKs>" % (len(self), len(self._resolver))

    def _check(self):
        if self._gen != _generation:
            self._refresh()

    @property
    def peer_ids(self):
        self._check()
        return list(self._ids)

    @property
    def addrs(self):
        """[(addr_type, addr)] of the listed peers whose identity is public or random
        static: what a controller accept list takes."""
        self._check()
        out = []
        for i in range(self._n):
            o = i * _ENTRY
            a = (self._table[o], bytes(self._table[o + 1 : o + 7]))
            if privacy.is_identity(*a):
                out.append(a)
        return out

    @property
    def irks(self):
        """[(addr_type, addr, irk)] of the listed peers that gave an IRK (16 bytes
        MSB-first): the device identities a controller's resolving list takes."""
        self._check()
        src = self._src
        out = []
        for p in self._ids:
            irk = src.irk(p)
            if irk is not None:
                out.append(src.identity(p) + (irk,))
        return out

    @micropython.native
    def match(self, addr_type, addr, resolved=False):
        """Peer ID of a listed peer this address belongs to, or None.

        resolved=True: the address came from the stack already resolved (the identity
        address in a connect IRQ), so an identity address matches in either mode; so do
        addr_type 2/3, which a resolving controller reports in scan results (HCI's
        "identity address of a resolved RPA")."""
        if self._gen != _generation:
            self._refresh()
        try:
            if addr_type == 1 and _len(addr) == 6 and _type(addr) is not _str:
                s = resolve_slot(self._state, self._aes, self._io, addr)  # -2: not an RPA
                if s >= 0:
                    return self._keys[s]
                if s == -1 or random_kind(addr) != 1:  # only random static identities
                    return None
            elif addr_type != 0 or _len(addr) != 6 or _type(addr) is _str:
                t = api_addr_type(addr_type)  # HCI 2/3: already resolved (off the hot path)
                if t != addr_type:
                    return self.match(t, addr, True)
                check_addr(addr_type, addr)  # raises
            i = _find(self._table, self._n, addr_type, addr, 1 if resolved else 0)
        except TypeError:
            check_addr(addr_type, addr)  # raises a TypeError that names the argument
            raise TypeError("addr")
        return self._ids[i] if i >= 0 else None
