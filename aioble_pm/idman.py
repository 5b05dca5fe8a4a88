"""ID manager: which bonded peer an address or a NimBLE key belongs to (identity lookup,
RPA resolution with the peers' IRKs) and the accept list of centrals. The resolver and
the whitelist module (which makes whitelists) load on first use."""
import sys
from . import addrs, nimble
from .events import SKIP_NO_ID_ADDR, SKIP_NO_IRK


class IDManager:
    def __init__(self, db):
        self._db = db
        self._resolver = None  # privacy.Resolver over every bonded IRK, built on first use
        self.accept_list = None  # Whitelist of the centrals allowed to stay connected

    # --- what whitelists read (no key material beyond the IRK) ------------------------

    def check(self, peer_id):
        self._db.check(peer_id)

    def key(self, peer_id):
        return self._db.key(peer_id)

    def identity(self, peer_id):
        return self._db.identity(peer_id)

    def irk(self, peer_id):
        return self._db.irk(peer_id)

    def peer_ids(self, skip=0):
        """Stored peer IDs, ascending, without those `skip` (SKIP_* flags) excludes."""
        if type(skip) is not int or not 0 <= skip <= SKIP_NO_ID_ADDR | SKIP_NO_IRK:
            raise ValueError("skip must be a combination of SKIP_NO_ID_ADDR and SKIP_NO_IRK")
        db = self._db
        out = []
        for pid in db.ids():
            if skip & SKIP_NO_IRK and not db.has_irk(pid):
                continue
            if skip & SKIP_NO_ID_ADDR and not addrs.is_identity(*db.identity(pid)):
                continue
            out.append(pid)
        return out

    # --- resolution ------------------------------------------------------------------

    def resolve(self, addr_type, addr):
        """Bonded peer ID for any address (identity, or an RPA of a bonded IRK), or None."""
        addr_type = nimble.api_addr_type(addr_type)
        addrs.check_addr(addr_type, addr)
        pid = self._db.find(nimble.addr_key(addr_type, addr))
        if pid is not None or addr_type != addrs.ADDR_RANDOM:
            return pid
        if self._resolver is None:  # the first random address that is no identity
            from .privacy import Resolver

            self._resolver = Resolver()
            for p in self._db.ids():
                self._sync_resolver(p)
        return self._resolver.resolve(addr_type, addr)

    def find_key(self, key):
        """Peer ID for a NimBLE key: its identity, or an RPA of a bonded peer that the
        stack did not resolve (ESP32's host-based privacy resolves only the peers it
        paired with since boot)."""
        pid = self._db.find(key)
        if pid is None and len(key) == 7 and key[0] == 1 and key[6] >> 6 == 1:
            pid = self.resolve(1, nimble.key_addr(key)[1])
        return pid

    def peer_changed(self, peer_id):
        """A peer's identity or IRK came, changed or went: update the resolver, and tell
        whitelists to rebuild."""
        wl = sys.modules.get("aioble_pm.whitelist")  # (loaded once a whitelist was made)
        if wl is not None:
            wl.changed()
        r = self._resolver
        if r is not None:
            self._sync_resolver(peer_id)

    def _sync_resolver(self, peer_id):
        r = self._resolver
        irk = self._db.irk(peer_id) if peer_id in self._db else None
        if irk is None:
            if peer_id in r:
                r.remove(peer_id)
        else:
            r.add(peer_id, irk)

    # --- the accept list ------------------------------------------------------------

    def accept(self, wl):
        """Set the accept list (None: anyone); returns the previous one."""
        if wl is not None:
            from .whitelist import Whitelist

            if not isinstance(wl, Whitelist):
                raise TypeError("wl must be a Whitelist or None")
        previous, self.accept_list = self.accept_list, wl
        return previous

    def accepts(self, addr_type, addr):
        """False if an accept list is set and this (stack-resolved) central is not on it."""
        return self.accept_list is None or self.accept_list.match(addr_type, addr, True) is not None
