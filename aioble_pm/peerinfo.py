"""What the app may see of a bonded peer (PeerInfo, the REPL table of pm.show()):
identity, IRK presence, security level, rank; never any key material. Loaded on first use."""


class PeerInfo:
    """What the PM knows of a bonded peer; never any key material."""

    def __init__(self, db, peer_id, connected):
        self.peer_id = peer_id
        self.addr_type, self.addr = db.identity(peer_id)
        self.irk = db.has_irk(peer_id)  # presence only
        self.authenticated = db.authenticated(peer_id)
        self.sc = db.sc(peer_id)
        self.key_size = db.key_size(peer_id)
        self.rank = db.rank(peer_id)
        self.complete = db.complete(peer_id)
        self.parsed = db.parsed(peer_id)  # False: a secret of a NimBLE layout we do not know
        self.connected = connected

    def __repr__(self):
        return "<PeerInfo %d %s %s irk=%d auth=%d sc=%d key_size=%d rank=%d>" % (
            self.peer_id, ("public", "random")[self.addr_type & 1], _hex(self.addr),
            self.irk, self.authenticated, self.sc, self.key_size, self.rank)


def _hex(addr):
    return ":".join("%02x" % b for b in addr)


def show(db, links):
    print("id  identity                  type    irk auth sc  key  rank  conn")
    for pid in db.ids():
        p = PeerInfo(db, pid, links.connected(pid))
        print("%-3d %-25s %-7s %-3s %-4s %-3s %-4d %-5d %s" % (
            pid, _hex(p.addr), ("public", "random")[p.addr_type & 1], "yes" if p.irk else "-",
            "yes" if p.authenticated else "-", "yes" if p.sc else "-", p.key_size, p.rank,
            "yes" if p.connected else "-"))
    print("%d of %d peer IDs used" % (db.count(), db.max_peers))
