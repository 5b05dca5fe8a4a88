"""Security manager: the security procedure of each link (start, outcome, judgement
against the security parameters), refusals, re-encryption, the links' view of the store.
It decides; the store adapter (store.py) moves the secrets. Its rarer parts load on first
use: bond admission and eviction (bonding.py), the passkey exchange (pairing.py),
repeated-attempts protection (attempts.py), `secure()` (secproc.py).

A link that fails its judgement is refused: its securing fails, it is dropped, and no
secure() on it succeeds afterwards (NimBLE keeps such a link encrypted with keys we do
not hold or do not trust).
"""
import micropython

from . import nimble, security
from .security import SecurityError, pairing_disabled
from .events import (CONN_SEC_START, CONN_SEC_SUCCEEDED, CONN_SEC_FAILED, STORAGE_FULL, PROC_ENCRYPTION,
                     PROC_BONDING, PROC_PAIRING, MISMATCH_REPORT)


class SecurityManager:
    def __init__(self, db, links, idm, emit, when_full):
        self._db = db
        self._links = links
        self._idm = idm
        self._emit = emit
        self.when_full = when_full
        self.params = security.SecParams()
        self.ra = None  # attempts.RepeatedAttempts, made at the first failed pairing
        self.ble = None
        self.passkey_timeout_ms = 30000
        self.in_gap_pair = None  # the link whose gap_pair() runs now (its store reads are its own)
        self._last_enc = None  # the link of the latest ENCRYPTION_UPDATE (upstream NimBLE stores its keys next)
        self._orphans = ()  # new bonds stored before their link was known (esp order, RPA peers)
        self.window = None  # pm.pairing_window: a policy.Window once configured (None: pairing open)
        self.on_mismatch = MISMATCH_REPORT  # pm.on_mismatch: a policy or a callable(event) -> policy
        self._doc = None  # the bond-mismatch doctor (policy.py), made at the first mismatch

    def doctor(self):
        if self._doc is None:
            from .policy import Doctor

            self._doc = Doctor(self)
        return self._doc

    def attempt_failed(self, link):
        if self.ra is None:  # (most boots see no failed pairing: no RAM, no code for it)
            from .attempts import RepeatedAttempts
            self.ra = RepeatedAttempts()
        self.ra.failed(link.key)

    def apply_params(self):
        if self.ble is not None and self.params is not None:
            try:
                self.ble.config(**self.params.to_config())
            except (OSError, ValueError, TypeError):
                pass  # a binding without pairing knobs (e.g. BTstack builds): enforced after the fact

    # --- procedure state -------------------------------------------------------------

    def start(self, link, procedure=None):
        if not link.busy:
            link.busy = True
            self._emit(CONN_SEC_START, conn=link.handle, peer_id=link.peer_id, procedure=procedure)

    def succeed(self, link, procedure):
        """The link is encrypted (and a new bond stored): judge it, then report."""
        link.pending = False
        pid = link.peer_id
        params = self.params
        if procedure != PROC_ENCRYPTION and params is None:
            err = pairing_disabled()
        elif params is not None:
            err = self.shortfall(link)
        else:
            err = None
        if err is not None:
            self.refuse(link, err)
            return
        if self.ra is not None:
            self.ra.succeeded(link.key)
        if self._doc is not None:
            self._doc.healed(link.key)
        if pid is not None and pid in self._db:
            try:
                self._db.rank_highest(pid)
            except OSError:
                self._emit(STORAGE_FULL, conn=link.handle, peer_id=pid)
        self._emit(CONN_SEC_SUCCEEDED, conn=link.handle, peer_id=pid, procedure=procedure)
        self.end(link, pid)

    def shortfall(self, link):
        """The SecurityError by which an encrypted link falls short of the parameters, or
        None. The binding reports no SC flag: only a stored bond tells, else fail closed."""
        pid = link.peer_id
        sc = self._db.sc(pid) if pid is not None and pid in self._db else None
        if sc is None and self.params.sc_only:
            sc = False
        return self.params.shortfall(link.authenticated, link.key_size, sc)

    def fail(self, link, err):
        """Report the procedure failed; a new bond it made is not kept."""
        new = link.new_peer
        peer = link.peer_id if link.peer_id is not None else link.hidden
        self._emit(CONN_SEC_FAILED, conn=link.handle, peer_id=peer, error=err)
        self.end(link, err)
        if new is not None and new in self._db:
            self.forget(new)

    def end(self, link, result):
        link.end_procedure()
        proc = link.proc
        if proc is not None and not proc.done:
            proc.done = True
            proc.result = result
            proc.flag.set()

    def refuse(self, link, err):
        """Fail the link for good and drop it. Returns None ("not stored" to the stack)."""
        if link is not None and link.refused is None:
            link.refused = err
            self.fail(link, err)
            self.drop_link(link.handle)
        return None

    def drop_link(self, handle):
        # Disconnect outside the stack's callback; with the schedule queue full, at once
        # (an untrusted link must not stay up).
        try:
            micropython.schedule(self._disconnect, handle)
        except RuntimeError:
            self._disconnect(handle)

    def _disconnect(self, handle):
        try:
            self.ble.gap_disconnect(handle)
        except OSError:
            pass

    def forget(self, peer_id):
        """Delete a peer (bond and data) and unlink it from its connections."""
        self._db.delete(peer_id)
        if peer_id in self._orphans:
            self._orphans.discard(peer_id)
        self._idm.peer_changed(peer_id)
        for link in self._links.with_peer(peer_id):
            link.peer_id = None

    def link_lost(self, link):
        """The link is gone: fail what ran on it, drop a bond it left half-stored."""
        if link.refused is None and link.securing():
            self.fail(link, SecurityError(SecurityError.DISCONNECTED, "link lost while securing"))
        pid = link.peer_id
        if pid is not None and pid in self._db and self._db.prune(pid):
            self._idm.peer_changed(pid)  # a re-pairing that deleted the old keys, stored none
        if self._last_enc is link:
            self._last_enc = None

    def stack_restarted(self):
        """NimBLE restarted (it asks for our IRK): no link survived; neither does a new
        bond that never got its link."""
        for link in self._links.all():
            self.link_lost(link)
        self._links.clear()
        self._last_enc = None
        for pid in list(self._orphans):
            if pid in self._db and not self._db.complete(pid):
                self.forget(pid)
        self._orphans = ()

    # --- the stack's store, as policy ------------------------------------------------

    def hiding(self):
        """Some bond is hidden from the stack now (asked at each by-index store read)."""
        links = self._links.by_handle
        if links:  # (none at activation, when NimBLE iterates every bond twice)
            for l in links.values():
                if l.hidden is not None:
                    return True
        return False

    def hidden(self, peer_id):
        return any(l.hidden == peer_id for l in self._links.all())

    def reading_link(self, key, pid):
        """The link a store access belongs to: the one in our gap_pair(); else the one
        link that connected with this address or belongs to this peer; with several
        (two links of one peer), the one a procedure runs on. None if unsure."""
        link = self.in_gap_pair
        if link is not None and (link.key == key or (pid is not None and link.peer_id == pid)):
            return link
        return self._one_of(self._links.matching(key, pid))

    def _one_of(self, links):
        if len(links) > 1:
            links = [l for l in links if l.securing()]
        return links[0] if len(links) == 1 else None

    def keys_read(self, link, found):
        """The stack read this link's peer's keys (a re-encryption), or they were
        unreadable (found=False: the bond is damaged)."""
        if link is None:
            return
        link.touch()
        if found:
            link.keys_read = True
        else:
            link.damaged = True
        self.start(link, PROC_ENCRYPTION)

    # --- GAP events ------------------------------------------------------------------

    def encryption_update(self, handle, encrypted, authenticated, bonded, key_size):
        link = self._links.get(handle)
        if link is None or link.refused is not None:
            return  # unknown, or being dropped after we refused it
        self._last_enc = link
        link.touch()
        self.start(link)
        link.encrypted = bool(encrypted)
        link.authenticated = bool(authenticated)
        link.key_size = key_size
        if not encrypted:
            self._encryption_failed(link)
        elif link.keys & (1 << nimble.SEC_PEER):
            self.succeed(link, PROC_BONDING)  # esp-nimble stores the keys first
        elif link.keys_read and link.repair is None and link.peer_id is not None:
            self.succeed(link, PROC_ENCRYPTION)  # stored keys: no new secrets follow
        elif bonded:
            # A new bond: upstream NimBLE raises this before it stores the keys
            # (ble_sm_process_result), so the outcome is known once they are answered.
            link.pending = True
        else:
            self.succeed(link, PROC_PAIRING)

    def _encryption_failed(self, link):
        if link.passkey == "passkey":
            err = SecurityError(SecurityError.PASSKEY, "wrong passkey")
        elif link.passkey == "numcmp":
            err = SecurityError(SecurityError.NUMCMP, "the numbers did not match")
        elif link.damaged:
            err = SecurityError(SecurityError.DAMAGED, "the stored keys could not be read")
        elif link.keys_read and link.repair is None:
            err = SecurityError(SecurityError.KEY_MISSING, "the peer has no keys for our bond")
        else:
            err = SecurityError(SecurityError.REJECTED, "pairing failed")
        if link.passkey is not None and link.proc is not None:
            link.enc_failed = err  # a vanished peer looks the same: secure() waits to see
            return
        self.settle_failure(link, err)
        if err.reason == SecurityError.KEY_MISSING:
            self.doctor().peer_lost(link)  # a one-sided bond: the peer lost its keys

    def settle_failure(self, link, err):
        if err.reason != SecurityError.KEY_MISSING and err.reason != SecurityError.DAMAGED:
            self.attempt_failed(link)  # pairings only
        self.fail(link, err)

    def settle(self, link):
        """A pending link whose keys never came (the stack stored nothing)."""
        if link.pending and link.refused is None:
            self.succeed(link, PROC_ENCRYPTION if link.peer_id is not None else PROC_PAIRING)
