"""The simulated air: clock, work queue, device registry and the link to other processes.

Everything a device does "later" (frames to peers, IRQs, timers) is a queued work item.
Items run only in pump(): called by tests (raw, deterministic) or by a background
asyncio task (when asyncio is in use). So IRQ handlers never run inside the
`bluetooth` call that caused them, as with MicroPython's scheduled IRQs on a board
(extmod/modbluetooth.c); the few IRQs NimBLE raises inside a call are called directly.
"""
import os
import sys
import utime as time  # the builtin: tests/lib/time.py's sleeps pump, these must not
import socket
from . import wire


class Air:
    def __init__(self):
        self._t0 = time.ticks_ms()
        self.offset = 0  # virtual milliseconds added by advance()
        self._queue = []  # [due_ms, seq, fn, args]
        self._seq = 0
        self.devices = {}  # dev_id -> local Device
        self.remote_adv = {}  # dev_id -> advertising state of a device in another process
        self._sock = None
        self._rx = bytearray()
        self._task = None
        self._kick = None
        self.pumping = False  # inside pump(): IRQ handlers run here

    # -- clock and queue -------------------------------------------------------------
    def now(self):
        return time.ticks_diff(time.ticks_ms(), self._t0) + self.offset

    def post(self, delay_ms, fn, *args):
        self._seq += 1
        self._queue.append([self.now() + delay_ms, self._seq, fn, args])
        self.kick()

    def next_due(self):
        """Milliseconds until the next queued item (0 if due), or None."""
        if not self._queue:
            return None
        return max(0, min(q[0] for q in self._queue) - self.now())

    def pump(self):
        """Run every item that is due, including items they queue with no delay.
        Returns how many ran."""
        was, self.pumping = self.pumping, True
        try:
            self._poll_link()
            ran = 0
            while True:
                now = self.now()
                best = None
                for q in self._queue:
                    if q[0] <= now and (best is None or (q[0], q[1]) < (best[0], best[1])):
                        best = q
                if best is None:
                    return ran
                self._queue.remove(best)
                best[2](*best[3])
                ran += 1
                if ran & 63 == 0:
                    self._poll_link()
        finally:
            self.pumping = was

    def linked(self):
        """Joined to a hub: frames from other processes may come at any time."""
        return self._sock is not None

    # -- addressing ------------------------------------------------------------------
    def new_id(self):
        while True:
            i = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
            if i and i not in self.devices and i not in self.remote_adv:
                return i

    def send(self, src, dst, op, *args):
        """Message from device src to device dst (local or in another process)."""
        dev = self.devices.get(dst)
        if dev is not None:
            self.post(0, dev._on_msg, src, op, args)
        elif self._sock is not None:
            self._write(wire.frame(src, dst, wire.MSG, [op] + list(args)))

    def advertisers(self, exclude):
        """(dev_id, state) of every advertising device but `exclude`."""
        out = []
        for i, d in self.devices.items():
            if i != exclude and d._adv is not None:
                out.append((i, d.adv_state()))
        for i, st in self.remote_adv.items():
            out.append((i, st))
        return out

    def adv_changed(self, dev):
        if self._sock is not None:
            self._write(wire.frame(dev.id, 0, wire.ADV, dev.adv_state()))

    def gone(self, dev_id):
        """A device left (reboot, process end): its peers lose their links."""
        self.remote_adv.pop(dev_id, None)
        for d in list(self.devices.values()):
            d._peer_gone(dev_id)

    # -- link to the hub (other micropython processes) ----------------------------------
    def connect_hub(self, port):
        s = socket.socket()
        s.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        s.setblocking(False)
        self._sock = s
        for d in self.devices.values():
            self.adv_changed(d)

    def _write(self, data):
        s = self._sock
        mv = memoryview(data)
        while mv:
            try:
                n = s.write(mv)
            except OSError:
                n = None
            if n:
                mv = mv[n:]
            else:
                time.sleep_ms(1)

    def _poll_link(self):
        s = self._sock
        if s is None:
            return
        while True:
            try:
                data = s.read(4096)
            except OSError:
                data = None
            if not data:
                if data == b"":
                    self._sock = None  # hub gone
                break
            self._rx.extend(data)
        self.feed(b"")

    def feed(self, data):
        if data:
            self._rx.extend(data)
        for p in wire.split(self._rx):
            src, dst, kind = wire.header(p)
            if kind == wire.MSG:
                dev = self.devices.get(dst)
                if dev is not None:
                    b = wire.body(p)
                    self.post(0, dev._on_msg, src, b[0], tuple(b[1:]))
            elif kind == wire.ADV:
                st = wire.body(p)
                if st is None:
                    self.remote_adv.pop(src, None)
                else:
                    self.remote_adv[src] = tuple(st)
                self.kick()
            elif kind == wire.GONE:
                self.post(0, self.gone, src)

    # -- asyncio cooperation --------------------------------------------------------
    def kick(self):
        """Wake the background pump task (created on first use if asyncio is loaded)."""
        if "asyncio" not in sys.modules:
            return
        import asyncio

        if self._kick is None:
            self._kick = asyncio.Event()
        self._kick.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run())
            if self._sock is not None:
                asyncio.create_task(self._reader())

    async def _run(self):
        import asyncio

        ev = self._kick
        while True:
            ev.clear()
            self.pump()
            t = self.next_due()
            if t == 0:
                await asyncio.sleep_ms(0)
                continue
            try:
                if t is None:
                    await ev.wait()
                else:
                    await asyncio.wait_for_ms(ev.wait(), t)
            except asyncio.TimeoutError:
                pass

    async def _reader(self):
        import asyncio

        stream = asyncio.StreamReader(self._sock)
        while self._sock is not None:
            data = await stream.read(4096)
            if data == b"":
                self._sock = None
                return
            if data:
                self.feed(data)
                self.kick()


air = Air()
