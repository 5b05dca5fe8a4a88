"""Bond admission, the security manager's policy for the stack's store writes (loaded
by the first bond stored): which link a new secret belongs to, whether it may be stored
and under which peer ID (judged against the security parameters and the pairing window
before any eviction, so a refused bond never costs another one), what a full store
evicts, and what a stack delete of a bonded peer's secret may do (a refused re-pairing
hides the bond instead). Each function takes the SecurityManager first.
"""
from . import addrs, nimble
from .peers import SECRET_MAX
from .security import SecurityError, pairing_disabled
from .events import CONN_SEC_CONFIG_REQ, STORAGE_FULL, PEER_EVICTED, EVICT_LRU, PROC_BONDING


def storing_link(sm, key, sec_type, value):
    """The link a new secret belongs to, matched by what NimBLE gives: the identity in
    the key against each link's address and peer, the IRK in a PEER_SEC value against
    each link's RPA, else the link whose ENCRYPTION_UPDATE just came (upstream NimBLE
    stores a bond right after it). None: not known yet (esp-nimble stores first)."""
    link = sm._one_of(sm._links.matching(key, sm._db.find(key)))
    if link is not None:
        return link
    if sec_type == nimble.SEC_PEER:
        info = nimble.parse_sec(value) if value is not None else None
        if info is not None and info.irk is not None:
            for link in sm._links.all():
                if link.addr_type == 1 and addrs.is_rpa(1, link.addr):
                    from .privacy import resolve

                    if resolve(info.irk, link.addr):
                        return link
    link = sm._last_enc
    if link is not None and link.pending and not link.keys:
        return link
    return None


def admit(sm, link, key, sec_type, value):
    """Policy for a new secret: the peer ID to store it under, or None (refused; the
    link's securing has failed). Checks come before any eviction, so a bond that is
    refused never costs another one."""
    if link is not None:
        if link.refused is not None:
            return None  # the rest of a bond we refused
        link.touch()
        sm.start(link)
    if len(value) > SECRET_MAX:
        return sm.refuse(link, SecurityError(SecurityError.REJECTED, "a %d-byte secret is too long" % len(value)))
    info = nimble.parse_sec(value)
    if info is None:
        print("aioble_pm: secret of unknown layout (%d bytes) stored verbatim" % len(value))
    db = sm._db
    pid = db.find(key)
    if pid is not None and pid in sm._orphans and link is not None:
        sm._orphans.discard(pid)  # the first half of this link's new bond
        link.new_peer = pid
        link.peer_id = pid
        link.keys |= (1 << nimble.SEC_OUR) if db.has_secret(pid, nimble.SEC_OUR) else 0
    if pid is not None and link is not None and pid != link.new_peer and link.repair is None and not link.keys:
        # New keys for a bonded peer without the stack deleting the old bond first:
        # a re-pairing NimBLE did not recognise, or one after our keys were unreadable.
        err = SecurityError(SecurityError.DAMAGED, "the stored keys could not be read") if link.damaged else None
        doc = err is None and sm.doctor().repairing(link, pid)  # (a damaged bond is ours, not a mismatch)
        link.repair = sm._emit(CONN_SEC_CONFIG_REQ, conn=link.handle, peer_id=pid, error=err).allowed or doc
        if not link.repair:
            link.peer_id = pid
            return sm.refuse(link, err or SecurityError(SecurityError.REJECTED, "re-pairing of a bonded peer not allowed"))
    new = pid is None
    if new and sm.window is not None and sm.window.refuses(key, sm._doc):
        return sm.refuse(link, SecurityError(SecurityError.PAIRING_CLOSED, "no pairing window is open"))
    if sm.params is None:  # new keys mean a pairing: none while pairing is disabled
        return sm.refuse(link, pairing_disabled())
    if info is not None and sm.params is not None:
        err = sm.params.shortfall(info.authenticated, info.key_size, info.sc)
        if err is not None:
            return sm.refuse(link, err)
    if new:
        pid = db.allocate()
        if pid is None:  # evict only for a bond that was judged: an unknown layout was not
            pid = _evict_for(sm, link, info is not None)
            if pid is None:
                return sm.refuse(link, SecurityError(SecurityError.STORAGE_FULL, "all %d peer IDs in use" % db.max_peers))
        if link is None:
            sm._orphans = sm._orphans or set()
            sm._orphans.add(pid)
        else:
            link.new_peer = pid
    if link is not None:
        link.peer_id = pid
    return pid


def stored(sm, link, sec_type):
    if link is not None:
        link.keys |= 1 << sec_type
        if link.pending and sec_type == nimble.SEC_PEER:
            sm.succeed(link, PROC_BONDING)


def store_failed(sm, link, pid):
    sm._emit(STORAGE_FULL, conn=link and link.handle, peer_id=pid)
    if link is None and sm._db.prune(pid):
        sm._idm.peer_changed(pid)
    return sm.refuse(link, SecurityError(SecurityError.STORAGE_FULL, "no room in flash"))


def may_delete(sm, link, pid):
    """A stack delete of a secret of bonded peer `pid`: "delete", "hide" (answer
    deleted, keep it on flash), or "absent" (answer not found)."""
    if sm.hidden(pid):
        return "absent"  # (NimBLE deletes until the store says "not found")
    if link is None or link.peer_id != pid:
        return "delete"
    # MicroPython deletes a bond only when a bonded central pairs again
    # (REPEAT_PAIRING) and then lets the pairing go on; NimBLE re-reads PEER_SEC and
    # asks again while it is found. So a re-pairing the app does not allow leaves the
    # bond on flash, hidden from the stack while the link lasts, and drops the link.
    link.touch()
    sm.start(link)
    if link.repair is None:  # with pairing disabled nobody may pair again, whatever the app says
        doc = sm.doctor().repairing(link, pid)  # a bonded central pairs again: it lost its keys
        link.repair = sm.params is not None and (sm._emit(CONN_SEC_CONFIG_REQ, conn=link.handle, peer_id=pid).allowed or doc)
    if link.repair:
        return "delete"
    link.hidden = pid
    sm.refuse(link, pairing_disabled() if sm.params is None else
              SecurityError(SecurityError.REJECTED, "re-pairing of a bonded peer not allowed"))
    link.peer_id = None  # whoever this is, it is not holding our bond's keys
    return "hide"


def _evict_for(sm, link, judged=True):
    """A free peer ID by evicting the lowest-ranked peer neither pinned nor connected
    now, or None (REJECT, nothing evictable, or a new bond that could not be judged)
    after STORAGE_FULL."""
    if sm.when_full == EVICT_LRU and judged:
        busy = [l.peer_id for l in sm._links.all()]
        db = sm._db
        victims = sorted((db.rank(p), p) for p in db.ids() if p not in busy and not db.pinned(p))
        if victims:
            pid = victims[0][1]
            sm.forget(pid)
            sm._emit(PEER_EVICTED, peer_id=pid)
            return pid
    sm._emit(STORAGE_FULL, conn=link and link.handle)
    return None
