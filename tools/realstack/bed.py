"""A bench of virtual BLE controllers for real-NimBLE MicroPython processes.

BlueZ's `btvirt -s` (Debian: bluez-test-tools) serves virtual controllers on a Unix
socket; hcirelay.py (or, with no latency, `socat`) gives each one a pty, which a unix
`micropython` built with NimBLE opens as its HCI UART (`MICROPYBTUART=<pty>`). The relay
adds an air-like delay (3 ms) to the controller's events and data: btvirt has none, and
zero latency exposes a race in NimBLE's host (see hcirelay.py). Controller i has the public address
00:AA:01:0i:00:42, and keeps it while the bench is up: a process that exits and a new one
on the same pty is a board that rebooted.

    with Bed(2) as bed:                  # btvirt + 2 ptys in a temp dir
        bed.env(0)                       # environment for a micropython on controller 0
        bed.addr(1)                      # b"\\x00\\xaa\\x01\\x01\\x00\\x42"

    python3 tools/realstack/bed.py up DIR [N] [--latency MS]   # from a shell; PIDs in DIR/pids
    python3 tools/realstack/bed.py down DIR

Processes are started here and stopped by their PIDs. btvirt's socket paths are compiled
into BlueZ (read from the binary), so one bench runs at a time on a machine: a lock file
serialises them.
On kernels without AF_ALG btvirt needs afalg_shim.so (build.sh makes it) in LD_PRELOAD.
"""
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LOCK = os.path.join(tempfile.gettempdir(), "aioble_pm-btvirt.lock")


def btvirt_servers(exe):
    """The UNIX socket paths `btvirt -s` serves on: BlueZ compiles them into the binary
    (emulator/server.c), so they are read from it rather than assumed. Returns (the
    BR/EDR+LE one, all of them): BR/EDR+LE because the LE-only controller lacks HCI Set
    Event Mask Page 2 and NimBLE resets forever on it."""
    with open(exe, "rb") as f:
        found = re.findall(rb"[\x21-\x7e]*/bt-server-[a-z]+(?=\x00)", f.read())
    paths = sorted(set(p.decode() for p in found))
    main = [p for p in paths if p.endswith("/bt-server-bredrle")]
    if not main:
        raise RuntimeError("bed: no bt-server-bredrle socket path in %s (not BlueZ's btvirt?)" % exe)
    return main[0], paths


def has_af_alg():
    try:
        socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0).close()
        return True
    except OSError:
        return False


def missing(shim=None, latency_ms=3):
    """What this machine lacks for a bench, as a sentence (None: nothing)."""
    for tool, pkg in (("btvirt", "bluez-test-tools"),):
        if not shutil.which(tool):
            return "%s not found (Debian package %s)" % (tool, pkg)
    if not latency_ms and not shutil.which("socat"):
        return "socat not found (Debian package socat; needed for a bench without latency)"
    if not has_af_alg() and not (shim and os.path.exists(shim)):
        return "the kernel has no AF_ALG and no afalg_shim.so was given (tools/realstack/build.sh makes it)"
    return None


def addr(i):
    """The public address of controller i (MSB first, as MicroPython's IRQs give it)."""
    return bytes((0x00, 0xAA, 0x01, i, 0x00, 0x42))


class Bed:
    def __init__(self, n=2, shim=None, workdir=None, trace=False, latency_ms=3, drop_secreq=None):
        self.n = n
        self.drop_secreq = drop_secreq or {}  # controller -> Security Requests its host never gets
        # air-like delay of controller events and data (hcirelay.py); 0: socat, as
        # btvirt is (zero latency: exposes races of NimBLE's own host, see hcirelay.py)
        self.latency_ms = 0 if trace else latency_ms
        self.shim = shim or os.environ.get("AIOBLE_PM_AFALG_SHIM")
        self.dir = workdir
        self.trace = trace  # socat -x: a hex dump of every H4 byte in socatI.log
        self.pids = []
        self._lock = None

    def pty(self, i):
        return os.path.join(self.dir, "hci%d" % i)

    def env(self, i, base=None):
        e = dict(os.environ if base is None else base)
        e["MICROPYBTUART"] = self.pty(i)
        return e

    def addr(self, i):
        return addr(i)

    def _spawn(self, args, log, **kw):
        p = subprocess.Popen(args, stdout=open(os.path.join(self.dir, log), "wb"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        self.pids.append(p.pid)
        with open(os.path.join(self.dir, "pids"), "a") as f:
            f.write("%d\n" % p.pid)
        return p

    def up(self):
        why = missing(self.shim, self.latency_ms)
        if why:
            raise RuntimeError("bed: " + why)
        self.dir = self.dir or tempfile.mkdtemp(prefix="realstack-")
        os.makedirs(self.dir, exist_ok=True)
        self._lock = open(LOCK, "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # waits for another bench to go down
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def _up(self):
        server, servers = btvirt_servers(shutil.which("btvirt"))
        for p in servers:
            if os.path.exists(p):
                os.unlink(p)  # left by a btvirt that was killed; the lock says none runs
        env = dict(os.environ)
        if not has_af_alg():
            env["LD_PRELOAD"] = os.path.abspath(self.shim)
        bt = self._spawn(["btvirt", "-s"], "btvirt.log", env=env)
        _wait(lambda: os.path.exists(server) or bt.poll() is not None, 5)
        if not os.path.exists(server):
            raise RuntimeError("bed: btvirt did not start: " + self._log("btvirt.log"))
        for i in range(self.n):
            if self.latency_ms:
                args = [sys.executable, os.path.join(HERE, "hcirelay.py"), self.pty(i), server, str(self.latency_ms),
                        str(self.drop_secreq.get(i, 0))]
            else:
                args = ["socat"] + (["-x"] if self.trace else []) + [
                    "PTY,link=%s,raw,echo=0" % self.pty(i), "UNIX-CONNECT:" + server]
            s = self._spawn(args, "socat%d.log" % i)
            _wait(lambda: os.path.exists(self.pty(i)) or s.poll() is not None, 5)
            if not os.path.exists(self.pty(i)):
                raise RuntimeError("bed: socat %d did not start: %s" % (i, self._log("socat%d.log" % i)))
            # btvirt numbers controllers in the order clients connect: one at a time, so
            # controller i is at pty i
            time.sleep(0.2)
        if bt.poll() is not None:
            raise RuntimeError("bed: btvirt exited: " + self._log("btvirt.log"))

    def _log(self, name):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return "(no log)"

    def down(self):
        for pid in reversed(self.pids):
            _stop(pid)
        self.pids = []
        if self.dir:
            try:
                os.unlink(os.path.join(self.dir, "pids"))
            except OSError:
                pass
        if self._lock:
            self._lock.close()  # releases the flock
            self._lock = None

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.down()


def _wait(cond, seconds):
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)


def _stop(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:  # not our child (a shell's `up`): poll for it
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def main(argv):
    latency = 3
    if "--latency" in argv:
        i = argv.index("--latency")
        latency = float(argv[i + 1])
        del argv[i:i + 2]
    if len(argv) >= 2 and argv[0] == "up":
        bed = Bed(int(argv[2]) if len(argv) > 2 else 2, workdir=argv[1], latency_ms=latency)
        bed.up()
        bed._lock.close()  # the shell owns the bench now; `down` ends it by PID
        print("bed: btvirt + %d controllers: %s" % (bed.n, " ".join(bed.pty(i) for i in range(bed.n))))
        return 0
    if len(argv) == 2 and argv[0] == "down":
        try:
            with open(os.path.join(argv[1], "pids")) as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            return 0
        for pid in reversed(pids):
            _stop(pid)
        os.unlink(os.path.join(argv[1], "pids"))
        return 0
    print("usage: bed.py up DIR [N] [--latency MS] | bed.py down DIR"
          "   (AIOBLE_PM_AFALG_SHIM=afalg_shim.so without AF_ALG)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
