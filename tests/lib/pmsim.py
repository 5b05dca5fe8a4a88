# Scenario helpers for Peer Manager tests on the BLE simulator (MicroPython side):
# a PM device over a RAM flash, plain peers with a dict secret store (like aioble's),
# and waiting on the simulated air under asyncio.
import asyncio
import blesim
import dictstore
import aioble_pm
from aioble_pm import flash

FLASH_SIZE = 8 * 4096  # the ESP32 board's bonds partition: 8 sectors of 4 KiB


class PM:
    """A device whose secret store is a PeerManager (raw `bluetooth` level)."""

    def __init__(self, name="pm", fl=None, ble=None, params=None, layout=80, **kw):
        self.flash = fl or flash.RamFlash(FLASH_SIZE, 4096)
        self.ble = blesim.device(name, layout=layout) if ble is None else ble  # 88: esp-nimble (keys first)
        self.pm = aioble_pm.PeerManager(self.flash, **kw)
        self.events = []
        self.pm.register(self.events.append)
        self.log = []
        if params is not None:
            self.pm.sec_params(**params)
        self.pm.attach(self.ble, self._app_irq)
        self.ble.active(True)

    def _app_irq(self, ev, data):
        self.log.append((ev, tuple(bytes(x) if isinstance(x, memoryview) else x for x in data)))

    def ids(self, ev_id):
        return [e for e in self.events if e.id == ev_id]

    def reboot(self, **kw):
        """Power-cycle: the stack forgets everything; a new PeerManager mounts the same flash."""
        blesim.reboot(self.ble)
        blesim.pump()
        return PM(fl=self.flash, ble=self.ble, **kw)

    def esp(self):
        return self.ble.layout == 88

    def connects(self):
        return [d for e, d in self.log if e in (1, 7)]


class Peer:
    """A plain device with a dict secret store (aioble-like) and scripted passkeys."""

    def __init__(self, name="peer", ble=None, store=None, **cfg):
        self.ble = ble or blesim.device(name)
        self.store = {} if store is None else store
        self.log = []
        self.on_passkey = None
        self.ble.irq(self.irq)
        self.ble.active(True)
        c = {"bond": True}
        c.update(cfg)
        self.ble.config(**c)
        self.id_addr = self.ble.config("mac")  # identity (config("mac") fails in RPA mode)

    def irq(self, ev, data):
        self.log.append((ev, tuple(bytes(x) if isinstance(x, memoryview) else x for x in data)))
        if ev in (29, 30):
            return dictstore.answer(self.store, ev, data)
        if ev == 31 and self.on_passkey is not None:
            self.on_passkey(*data)

    def events(self, ev):
        return [d for e, d in self.log if e == ev]

    def identity(self):
        return self.id_addr

    def advertise(self):
        self.ble.gap_advertise(20000, b"\x02\x01\x06")
        return blesim.ota_addr(self.ble)  # what a scanner sees: public, or the current RPA

    def forget_bonds(self):
        for k in [k for k in self.store if k[0] in (1, 2)]:
            del self.store[k]


class Spy:
    """A device's BLE object with its gap_pair calls recorded (and failing on demand:
    set .fail to an OSError); everything else goes to the device."""

    def __init__(self, ble):
        self._ble = ble
        self.device = ble  # the simulated device, for blesim's control API
        self.pairs = []
        self.fail = None

    def __getattr__(self, name):
        return getattr(self._ble, name)

    def gap_pair(self, handle):
        self.pairs.append(handle)
        if self.fail is not None:
            raise self.fail
        return self._ble.gap_pair(handle)


def blob(key, key_size=16):
    """An 80-byte NimBLE secret value for this 7-byte key (no keys in it)."""
    value = bytearray(80)
    value[0:7] = key
    value[7] = key_size
    return bytes(value)


def gone(pm, handle):
    """pm's link `handle` (its latest connection with that handle) is disconnected."""
    last = [i for i, (e, d) in enumerate(pm.log) if e in (1, 7) and d[0] == handle]
    return bool(last) and any(e in (2, 8) and d[0] == handle for e, d in pm.log[last[-1]:])


async def until(cond, timeout_ms=3000, what="condition"):
    """Let the simulated air run (background pump task) until cond() holds."""
    for _ in range(timeout_ms // 2):
        if cond():
            return
        await asyncio.sleep_ms(2)
    raise AssertionError("timed out waiting for " + what)


async def connect(pm, peer):
    """pm (central) connects to peer (advertising). Returns pm's connection handle."""
    t, addr = peer.advertise()
    n, m = len(pm.connects()), len(peer.events(1))
    pm.ble.gap_connect(t, addr)
    await until(lambda: len(pm.connects()) > n and len(peer.events(1)) > m, what="connect")
    return pm.connects()[-1][0]


async def accept(pm, central):
    """central (a Peer) connects to pm (advertising). Returns pm's connection handle."""
    pm.ble.gap_advertise(20000, b"\x02\x01\x06")
    t, addr = blesim.ota_addr(pm.ble.device if isinstance(pm.ble, Spy) else pm.ble)
    n, m = len(pm.connects()), len(central.events(7))
    central.ble.gap_connect(t, addr)
    await until(lambda: len(pm.connects()) > n and len(central.events(7)) > m, what="connect")
    return pm.connects()[-1][0]


async def disconnect(pm, handle):
    """Disconnect pm's link `handle` (if it is still up) and wait until it is gone."""

    if not gone(pm, handle):
        try:
            pm.ble.gap_disconnect(handle)
        except OSError:
            pass
    await until(lambda: gone(pm, handle), what="disconnect")


async def bond(pm, peer):
    """pm (central) connects to peer, secures the link (pairing and bonding, or
    re-encrypting) and disconnects. Returns the peer ID secure() gave."""
    h = await connect(pm, peer)
    pid = await pm.pm.secure(h)
    await disconnect(pm, h)
    return pid


async def cut_bonding(fl, peer, ble=None):
    """One boot of a board on flash `fl` (whose power may be cut at any flash operation)
    bonding with `peer`: whatever happens (PowerCut, a failed or timed-out securing), the
    board then dies and the peer sees the link drop."""
    try:
        a = PM(fl=fl, ble=ble)
    except flash.PowerCut:
        return
    try:
        h = await connect(a, peer)
        await a.pm.secure(h, timeout_ms=2000)
    except Exception:  # any outcome of a bonding cut short is the point of the test
        pass
    blesim.reboot(a.ble)
    await until(lambda: len(peer.events(2)) == len(peer.events(1)), what="the peer to see the link drop")
