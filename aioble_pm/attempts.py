"""Repeated-attempts protection (Core Vol 3 Part H 2.3.6) with Nordic's Peer Manager's
numbers. Its own module, loaded at the first failed pairing: most boots never see one.
"""
from micropython import const
import time

from .security import _int

_KEY_MAX = const(16)  # longest peer key RepeatedAttempts tracks
_SLOT = const(17)  # length byte + key
_FREE = const(0xFF)


class RepeatedAttempts:
    """Repeated-attempts protection (Core Vol 3 Part H 2.3.6), Nordic's numbers.

    After a failed pairing a peer must wait `min_wait` ms. A failure during the
    wait or within `reward` ms after it doubles the wait (up to `max_wait`); each
    further `reward` ms without a failure halves the wait the next failure gets,
    and a peer whose next wait would drop below `min_wait` is forgotten. Up to
    `peers` peers are tracked in preallocated tables; a new peer takes a free slot
    or the one that failed longest ago. Peers are keyed by 1..16 bytes (e.g. the
    7-byte identity key from nimble.addr_key).

    check() does not count as a failure: call failed() for an attempt refused
    with Repeated Attempts if such attempts should extend the wait. Times are
    ticks from `clock` (default time.ticks_ms), compared with time.ticks_diff.
    """

    def __init__(self, clock=time.ticks_ms, peers=8, min_wait=4000, max_wait=64000, reward=10000):
        for name, v in (("peers", peers), ("min_wait", min_wait), ("max_wait", max_wait), ("reward", reward)):
            if _int(v, name) <= 0:
                raise ValueError("%s must be > 0, got %d" % (name, v))
        if max_wait < min_wait:
            raise ValueError("max_wait %d < min_wait %d" % (max_wait, min_wait))
        self._clock = clock
        self._min = min_wait
        self._max = max_wait
        self._reward = reward
        top = 0
        while (min_wait << top) < max_wait:
            top += 1
        self._top = top  # level whose wait reaches max_wait
        self._peers = peers
        self._keys = self._level = self._since = None  # the tables, made at the first failure

    def _tables(self):
        if self._level is None:  # (most boots see no failed pairing: no RAM for them)
            n = self._peers
            self._keys = bytearray(n * _SLOT)
            self._level = bytearray(b"\xff" * n)
            self._since = [0] * n  # tick of each slot's last failure

    def __len__(self):
        """Number of peers tracked (expired ones are dropped on the next call)."""
        n = 0
        for level in self._level or b"":
            if level != _FREE:
                n += 1
        return n

    def __repr__(self):
        return "<RepeatedAttempts %d/%d peers tracked>" % (len(self), self._peers)

    def _wait(self, level):
        return self._max if level >= self._top else self._min << level

    def _level_at(self, i, now):
        """Level of slot i at `now`: the stored one while waiting, lower by one per
        reward period after that; < 0 once forgotten."""
        level = self._level[i]
        elapsed = time.ticks_diff(now, self._since[i])
        if elapsed < 0:  # ticks wrapped past half their period: long ago
            return -1
        wait = self._wait(level)
        if elapsed < wait:
            return level
        return level - (elapsed - wait) // self._reward

    def _remaining(self, i, now):
        left = self._wait(self._level[i]) - time.ticks_diff(now, self._since[i])
        return left if left > 0 else 0

    def _find(self, peer, now):
        """Slot of `peer` (or -1), forgetting expired slots on the way."""
        if type(peer) not in (bytes, bytearray, memoryview):
            raise TypeError("peer must be bytes-like, not %s" % type(peer).__name__)
        n = len(peer)
        if not 0 < n <= _KEY_MAX:
            raise ValueError("peer must be 1..16 bytes, got %d" % n)
        if self._level is None:
            return -1
        keys = self._keys
        found = -1
        for i in range(len(self._level)):
            if self._level[i] == _FREE:
                continue
            if self._level_at(i, now) < 0:
                self._level[i] = _FREE
                continue
            o = i * _SLOT
            if keys[o] == n:
                j = 0
                while j < n and keys[o + 1 + j] == peer[j]:
                    j += 1
                if j == n:
                    found = i
        return found

    def check(self, peer):
        """Milliseconds `peer` must still wait before pairing; 0 = allowed now."""
        now = self._clock()
        i = self._find(peer, now)
        return 0 if i < 0 else self._remaining(i, now)

    def failed(self, peer):
        """Record a failed pairing with `peer`; returns its new wait in ms."""
        self._tables()
        now = self._clock()
        i = self._find(peer, now)
        if i >= 0:
            level = self._level_at(i, now) + 1
            if level > self._top:
                level = self._top
        else:
            level = 0
            i = self._slot(now)
            o = i * _SLOT
            self._keys[o] = len(peer)
            for j in range(len(peer)):
                self._keys[o + 1 + j] = peer[j]
        self._level[i] = level
        self._since[i] = now
        return self._wait(level)

    def _slot(self, now):
        """A free slot, else the one whose last failure is oldest."""
        best = 0
        oldest = -1
        for i in range(len(self._level)):
            if self._level[i] == _FREE:
                return i
            age = time.ticks_diff(now, self._since[i])
            if age > oldest:
                best = i
                oldest = age
        return best

    def succeeded(self, peer):
        """`peer` paired: forget its failures."""
        i = self._find(peer, self._clock())
        if i >= 0:
            self._level[i] = _FREE
