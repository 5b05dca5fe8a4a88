"""Connection state: one Link per connection (its address, peer ID, encryption state and
the security procedure running on it), looked up by handle, by NimBLE key or by peer."""
from . import nimble
from .events import BONDED_PEER_CONNECTED, CONN_REFUSED


class Proc:
    """One secure() call's view of a procedure; every caller on the link shares it."""

    def __init__(self, flag):
        self.flag = flag  # ThreadSafeFlag the first caller waits on
        self.done = False
        self.result = None  # peer_id (None: paired without bond) or SecurityError


class Link:
    """State of one connection and of the security procedure running on it."""

    def __init__(self, handle, addr_type, addr, peer_id, peripheral):
        self.handle = handle
        self.addr_type = addr_type
        self.addr = addr
        self.key = nimble.addr_key(addr_type, addr)  # NimBLE key of the address it connected with
        self.peer_id = peer_id
        self.peripheral = peripheral  # we are the peripheral (the central connected to us)
        self.encrypted = False
        self.authenticated = False
        self.key_size = 0
        self.proc = None  # Proc of the running secure(), if any
        self.activity = 0  # SMP-related IRQs seen (the Security Request policy watches it)
        # for the whole link:
        self.repair = None  # None: no re-pairing asked; True/False: allowed or not
        self.hidden = None  # peer ID whose bond is hidden from the stack (denied re-pairing)
        self.refused = None  # SecurityError: the link failed; it is being dropped
        self.end_procedure()

    def end_procedure(self):
        """Forget the state of the procedure that just ended."""
        self.busy = False  # CONN_SEC_START emitted, no outcome yet
        self.keys = 0  # bits (1 << sec_type) of the secrets stored by this procedure
        self.keys_read = False  # the stack got this peer's stored keys: a re-encryption
        self.damaged = False  # the stack asked for this peer's keys and they were unreadable
        self.new_peer = None  # peer ID allocated for this procedure's bond
        self.pending = False  # encrypted, the new bond's keys still due (upstream NimBLE)
        self.passkey = None  # pending action (INPUT/NUMCMP); "passkey"/"numcmp" once answered
        self.passkey_at = None  # ticks_ms when the pending passkey action was asked
        self.enc_failed = None  # SecurityError of a failed encryption, held until the link's fate is known

    def securing(self):
        """A security procedure runs on this link (started, or a secure() waiting)."""
        return self.busy or (self.proc is not None and not self.proc.done)

    def touch(self):
        """An SMP-related IRQ for this link: wake secure()."""
        self.activity += 1
        if self.proc is not None:
            self.proc.flag.set()


class Links:
    """The PM's connections, by handle, kept by the connect/disconnect IRQs."""

    def __init__(self, idm, emit):
        self.by_handle = {}
        self._idm = idm
        self._emit = emit
        self.sm = None  # the security manager (fails what ran on a lost link)
        self.ble = None
        self.aioble = False

    def up(self, central, handle, addr_type, addr):
        """A connect IRQ (central: a central connected to us). A central that the accept
        list refuses is disconnected at once and never gets a link."""
        addr = bytes(addr)
        addr_type = nimble.api_addr_type(addr_type)  # 2/3: an identity the controller resolved
        pid = self._idm.resolve(addr_type, addr)
        if central and not self._idm.accepts(addr_type, addr):
            self._emit(CONN_REFUSED, conn=handle, peer_id=pid, addr=(addr_type, addr))
            self.sm.drop_link(handle)  # outside the connect IRQ, where a disconnect can fail
            return
        self.add(Link(handle, addr_type, addr, pid, central))
        if pid is not None:
            if not central and self.aioble:
                from . import aiohooks

                aiohooks.match_pending_connect(self._idm, pid, addr_type, addr)
            self._emit(BONDED_PEER_CONNECTED, conn=handle, peer_id=pid)

    def down(self, handle):
        link = self.pop(handle)
        if self.aioble:
            from . import aiohooks

            aiohooks.forget_aliases()
        if link is not None:
            self.sm.link_lost(link)

    def get(self, handle):
        return self.by_handle.get(handle)

    def add(self, link):
        self.by_handle[link.handle] = link

    def pop(self, handle):
        return self.by_handle.pop(handle, None)

    def all(self):
        return list(self.by_handle.values())

    def clear(self):
        self.by_handle = {}

    def matching(self, key, peer_id=None):
        """Links that connected with this address (NimBLE key) or belong to peer_id."""
        return [l for l in self.by_handle.values()
                if l.key == key or (peer_id is not None and l.peer_id == peer_id)]

    def with_peer(self, peer_id):
        return [l for l in self.by_handle.values() if l.peer_id == peer_id]

    def connected(self, peer_id):
        return any(l.peer_id == peer_id for l in self.by_handle.values())
