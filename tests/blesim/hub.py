"""Host-side (CPython) hub of the multi-process air: relays frames between micropython
processes over loopback TCP. It remembers each device's latest advertising state for
processes that join later, and announces GONE for every device of a process whose
connection closes (a "reboot" or crash), so its peers lose their links.

    python tests/blesim/hub.py [port]      # prints the port, serves until killed
    with Hub() as hub: ... hub.port ...    # from a test
"""
import os
import selectors
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402  (shared with the MicroPython side)


class Hub:
    def __init__(self, port=0):
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", port))
        self._srv.listen(16)
        self.port = self._srv.getsockname()[1]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._srv, selectors.EVENT_READ)
        self._clients = {}  # socket -> [rx bytearray, set of device ids]
        self._adv = {}  # device id -> last ADV frame
        self._stop = False
        self._thread = None

    def __enter__(self):
        self._thread = threading.Thread(target=self.serve, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        if self._thread:
            self._thread.join(2)
        for s in list(self._clients):
            s.close()
        self._srv.close()

    def serve(self):
        while not self._stop:
            for key, _ in self._sel.select(0.05):
                if key.fileobj is self._srv:
                    s, _ = self._srv.accept()
                    s.setblocking(True)
                    self._clients[s] = [bytearray(), set()]
                    self._sel.register(s, selectors.EVENT_READ)
                    for f in list(self._adv.values()):
                        self._send(s, f)
                else:
                    self._read(key.fileobj)

    def _read(self, s):
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(s)
            return
        rx, ids = self._clients[s]
        rx.extend(data)
        for p in wire.split(rx):
            src, dst, kind = wire.header(p)
            ids.add(src)
            f = len(p).to_bytes(2, "little") + p
            if kind == wire.ADV:
                if wire.body(p) is None:
                    self._adv.pop(src, None)
                else:
                    self._adv[src] = f
            for other in list(self._clients):
                if other is not s:
                    self._send(other, f)

    def _send(self, s, f):
        try:
            s.sendall(f)
        except OSError:
            pass

    def _drop(self, s):
        self._sel.unregister(s)
        _, ids = self._clients.pop(s)
        s.close()
        for i in ids:
            self._adv.pop(i, None)
            f = wire.frame(i, 0, wire.GONE, None)
            for other in list(self._clients):
                self._send(other, f)


if __name__ == "__main__":
    hub = Hub(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(hub.port, flush=True)
    hub.serve()
