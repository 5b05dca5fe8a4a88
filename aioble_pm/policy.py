"""Admission policies beyond the security parameters, each loaded on first use: the
pairing window (pm.pairing_window: new bonds only while it is open) and the
bond-mismatch doctor, which recognises a one-sided bond (one side lost its keys),
reports it once as BOND_MISMATCH (which side, what the user should do), stops the
reconnect storm and applies the app's policy (pm.on_mismatch).

Signatures (real NimBLE, FACTS/realstack): as central, our re-encryption fails
(ENCRYPTION_UPDATE(0): KEY_MISSING): the peer lost its keys. As peripheral, the central
asks for the LTK of a bond we do not hold (GET_SECRET(OUR_SEC, its address) not found,
then no IRQ at all): we lost ours. A bonded peer pairs again (REPEAT_PAIRING, or new keys
for a bonded address): the peer lost its keys.
"""
from micropython import const
import time

from .events import BOND_MISMATCH, MISMATCH_REPAIR
from .security import SecurityError
from .attempts import RepeatedAttempts

LOST_PEER = "peer"  # the peer lost its keys; we still hold the bond
LOST_LOCAL = "local"  # we lost ours; the peer still holds its keys
_GRACE_MS = const(60000)  # MISMATCH_REPAIR: how long that one peer may pair again
_TRACKED = const(8)

ADVICE = {
    LOST_PEER: "the peer deleted its bond with this device: pair again (allow the re-pairing, "
               "or pm.delete(peer_id) and pair)",
    LOST_LOCAL: "this device lost its bond with the central (reflashed or erased?): restore a backup "
                "with pm.restore(), or remove this device from the central's Bluetooth settings and pair again",
}


class Window:
    """A pairing window: new bonds for `ms` milliseconds from now (0: none)."""

    def __init__(self, ms):
        self._t = time.ticks_ms()
        self._s = time.time()
        self._ms = ms

    def left(self):
        """ms left (0: closed)."""
        ms = self._ms
        if ms:
            # ticks_ms wraps (after ~6 days it would look young again): time() confirms
            age = time.ticks_diff(time.ticks_ms(), self._t)
            if 0 <= age < ms and time.time() - self._s <= ms // 1000 + 1:
                return ms - age
            self._ms = 0
        return 0

    def refuses(self, key, doctor):
        """Closed for this peer: no window open, and no re-pair window of the doctor's."""
        return self.left() == 0 and not (doctor is not None and doctor.consume(key))


class Doctor:
    def __init__(self, sm):
        self._sm = sm
        # back-off per address: 5 s doubling to 5 min while the storm goes on
        self._storm = RepeatedAttempts(peers=_TRACKED, min_wait=5000, max_wait=300000, reward=60000)
        self._reported = []  # keys reported since their last success (oldest first)
        self._grace = {}  # key -> ticks_ms until which it may pair again (MISMATCH_REPAIR)

    def _found(self, link, lost, peer_id, how):
        """Note a mismatch on link: (the policy, if reported now (None otherwise), in a storm)."""
        key = link.key
        storm = self._storm.check(key) > 0
        self._storm.failed(key)
        if key in self._reported:
            return None, storm
        self._reported.append(key)
        if len(self._reported) > _TRACKED:
            self._reported.pop(0)
        sm = self._sm
        ev = sm._emit(BOND_MISMATCH, conn=link.handle, peer_id=peer_id,
                      error=SecurityError(SecurityError.KEY_MISSING, how), lost=lost, advice=ADVICE[lost])
        policy = sm.on_mismatch(ev) if callable(sm.on_mismatch) else sm.on_mismatch
        if policy == MISMATCH_REPAIR and not storm:  # rate limit: one window per back-off
            self._grace[key] = time.ticks_add(time.ticks_ms(), _GRACE_MS)
        return policy, storm

    def may_pair(self, key):
        """MISMATCH_REPAIR opened a re-pair window for this peer and it is still open."""
        until = self._grace.get(key)
        if until is None:
            return False
        if time.ticks_diff(until, time.ticks_ms()) > 0:
            return True
        del self._grace[key]
        return False

    def healed(self, key):
        """The link secured: the bond is whole again."""
        if key in self._reported:
            self._reported.remove(key)
        self._grace.pop(key, None)

    # --- the signatures -------------------------------------------------------------

    def local_lost(self, link):
        """As peripheral: the central wants the LTK of a bond we do not hold. Its
        securing fails now (not at secure()'s timeout); while the storm goes on, links
        from that central are dropped at once."""
        sm = self._sm
        _, storm = self._found(link, LOST_LOCAL, None, "the central holds keys for a bond this device lost")
        err = SecurityError(SecurityError.KEY_MISSING, "the central holds keys for a bond this device lost")
        sm.start(link)
        if storm:
            sm.refuse(link, err)
        elif link.refused is None:
            sm.fail(link, err)

    def peer_lost(self, link):
        """As central: the peer refused our stored keys (KEY_MISSING). While the storm
        goes on, secure() on that peer waits (REPEATED_ATTEMPTS); MISMATCH_REPAIR
        deletes our stale bond so that the next secure() pairs afresh."""
        sm = self._sm
        pid = link.peer_id
        policy, storm = self._found(link, LOST_PEER, pid, "the peer refused our stored keys")
        if storm:
            sm.attempt_failed(link)
        if policy == MISMATCH_REPAIR and pid is not None and pid in sm._db:
            sm.forget(pid)

    def repairing(self, link, pid):
        """A bonded peer pairs again: True if the policy lets it (once per re-pair window)."""
        self._found(link, LOST_PEER, pid, "a bonded peer pairs again: it lost its keys")
        return self.consume(link.key)

    def consume(self, key):
        """may_pair(), and the window is used up by this pairing."""
        if self.may_pair(key):
            del self._grace[key]
            return True
        return False
