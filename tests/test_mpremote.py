"""The real `mpremote` drives a unix-port `micropython` REPL as it drives a board: the
REPL runs on a pty, a thread bridges the pty to a loopback TCP socket, and mpremote
connects with `socket://127.0.0.1:PORT`. We copy the package over, import it and run
a command at the REPL."""
import os
import pty
import select
import socket
import subprocess
import sys
import threading
import tty

import pytest

import mpharness


class PtyBridge:
    """micropython REPL on a pty, served to one TCP client at a time on 127.0.0.1."""

    def __init__(self, cwd):
        self.master, slave = pty.openpty()
        tty.setraw(slave)  # a UART does no newline translation; mpremote expects exact bytes
        env = mpharness.micropython_env()
        env["MICROPYPATH"] = ""  # only the REPL's cwd: imports must find the copied files
        self.proc = subprocess.Popen([mpharness.micropython_exe()], stdin=slave, stdout=slave,
                                     stderr=slave, cwd=cwd, env=env, close_fds=True)
        os.close(slave)
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            r, _, _ = select.select([self.server], [], [], 0.1)
            if not r:
                continue
            conn, _ = self.server.accept()
            with conn:
                self._pump(conn)

    def _pump(self, conn):
        while not self.stop:
            r, _, _ = select.select([conn, self.master], [], [], 0.1)
            if conn in r:
                data = conn.recv(4096)
                if not data:
                    return
                os.write(self.master, data)
            if self.master in r:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    return
                conn.sendall(data)

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.proc.kill()
        self.proc.wait()
        self.server.close()
        os.close(self.master)


def mpremote(port, *args, timeout=60):
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    cmd = [exe if os.path.exists(exe) else "mpremote", "connect", "socket://127.0.0.1:%d" % port, "resume"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                          cwd=mpharness.ROOT)


def _version():
    out = subprocess.run([mpharness.micropython_exe(), "-c", "import sys; print(sys.implementation.version[:2])"],
                         capture_output=True, text=True, timeout=30).stdout
    return tuple(int(x) for x in out.strip("()\n ").split(","))


def test_mpremote_copies_imports_and_runs(tmp_path):
    if _version() < (1, 27):
        pytest.skip("the unix port's REPL has no raw mode before MicroPython 1.27 (boards always had it)")
    bridge = PtyBridge(str(tmp_path))
    try:
        # one file at a time: mpremote 1.29's `cp -r` loses its -r after `connect ... resume`
        files = sorted("aioble_pm/" + f for f in os.listdir(os.path.join(mpharness.ROOT, "aioble_pm"))
                       if f.endswith(".py"))
        # mpremote's raw-REPL copy moves about 3 KB/s over the socket transport: allow for
        # the package's size (187 KB took 59 s), not a fixed minute
        size = sum(os.path.getsize(os.path.join(mpharness.ROOT, f)) for f in files)
        proc = mpremote(bridge.port, "mkdir", ":aioble_pm", "+", "cp", *files, ":aioble_pm/",
                        timeout=60 + size // 1000)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert os.path.isfile(tmp_path / "aioble_pm" / "privacy.py")
        code = ("import aioble_pm.privacy as p, binascii as b;"
                "print('resolved', p.resolve(b.unhexlify('ec0234a357c8ad05341010a60a397d9b'),"
                " b.unhexlify('708194' '0dfbaa')), p.__file__)")
        proc = mpremote(bridge.port, "exec", code)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "resolved True aioble_pm/privacy.py" in proc.stdout, proc.stdout
    finally:
        bridge.close()
