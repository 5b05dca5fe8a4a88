"""One virtual controller's H4 link with air-like timing: a pty for the host (a unix
`micropython` with NimBLE opens it as MICROPYBTUART) relayed to btvirt's socket.

btvirt answers at once: a link-layer procedure that takes at least one connection
interval on a real radio (the encryption start, a data packet) completes microseconds
after the command that started it. MicroPython's unix NimBLE runs its host
synchronously, so an event that arrives while the host is still waiting for the
command's status is handled before the host has recorded what it started: measured,
the central then answers its own Encryption Change with Pairing Failed (0x08) in about
1 pairing in 10. This relay holds controller-to-host events (other than command
status/complete) and ACL data for a delay, in order, like a connection interval does;
host-to-controller bytes pass at once.

    python3 hcirelay.py PTYLINK SOCKET [DELAY_MS [DROP_SECREQ]]
        DELAY_MS default 3 (0: no delay); DROP_SECREQ: the first N SMP Security Requests
        from the peer never reach this host (a central that ignores them, as NimBLE's host
        did with a request in the connection burst; for benchmarks)

It also counts the ATT PDUs this host sends and receives (ACL start fragments on L2CAP
CID 4) and keeps the count, as decimal text, in the file PTYLINK.att (replaced
atomically on each change): a board reads it to measure its own ATT traffic.
"""
import os
import select
import socket
import sys
import time
import tty

_CMD_DONE = (0x0E, 0x0F, 0x13)  # command complete/status, completed packets: no air time


def is_att(pkt):
    # ACL with a start fragment's packet boundary flag (0b00 or 0b10), L2CAP CID 0x0004
    return len(pkt) >= 9 and pkt[0] == 0x02 and (pkt[2] >> 4) & 0x3 != 0x1 and pkt[7] == 0x04 and pkt[8] == 0x00


class AttCount:
    """The ATT PDU count, published in a file the board can read at any time."""

    def __init__(self, path):
        self.path, self.n = path, 0
        self._publish()

    def add(self, pkts):
        k = sum(1 for p in pkts if is_att(p))
        if k:
            self.n += k
            self._publish()

    def _publish(self):
        with open(self.path + ".tmp", "w") as f:
            f.write(str(self.n))
        os.replace(self.path + ".tmp", self.path)


def is_security_request(pkt):
    # ACL start fragment, L2CAP CID 0x0006 (SMP), SMP code 0x0B
    return len(pkt) >= 10 and pkt[0] == 0x02 and pkt[7] == 0x06 and pkt[8] == 0x00 and pkt[9] == 0x0B


class Stream:
    """Splits H4 bytes (either direction) into packets."""

    def __init__(self):
        self.buf = b""

    def packets(self, data):
        self.buf += data
        out = []
        while self.buf:
            kind = self.buf[0]
            if kind == 0x04 and len(self.buf) >= 3:
                n = 3 + self.buf[2]
            elif kind == 0x02 and len(self.buf) >= 5:
                n = 5 + (self.buf[3] | self.buf[4] << 8)
            elif kind == 0x01 and len(self.buf) >= 4:  # a command (host to controller)
                n = 4 + self.buf[3]
            elif kind in (0x01, 0x02, 0x04):
                break  # header incomplete
            else:
                n = len(self.buf)  # not H4 we know: pass it on as it is
            if len(self.buf) < n:
                break
            out.append(self.buf[:n])
            self.buf = self.buf[n:]
        return out


def main(link, path, delay_ms=3.0, drop_secreq=0):
    master, slave = os.openpty()
    tty.setraw(slave)
    tmp = link + ".tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.ttyname(slave), tmp)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    os.replace(tmp, link)  # the pty appears once the controller is attached
    delay = delay_ms / 1000.0
    stream, queue, last = Stream(), [], 0.0
    host, att = Stream(), AttCount(link + ".att")
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        ready, _, _ = select.select([master, sock], [], [], timeout)
        if master in ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # no host has the pty open (between two boots)
                data = b""
                time.sleep(0.005)
            if data:
                sock.sendall(data)
                att.add(host.packets(data))
        if sock in ready:
            data = sock.recv(4096)
            if not data:
                return 0  # btvirt went away
            now = time.monotonic()
            pkts = stream.packets(data)
            att.add(pkts)
            for pkt in pkts:
                if drop_secreq and is_security_request(pkt):
                    drop_secreq -= 1
                    continue
                held = pkt[0] == 0x02 or (pkt[0] == 0x04 and pkt[1] not in _CMD_DONE)
                last = max(last, now + (delay if held else 0.0))  # in order, never reordered
                queue.append((last, pkt))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            os.write(master, queue.pop(0)[1])


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 3.0,
                  int(sys.argv[4]) if len(sys.argv) > 4 else 0))
