"""The demo: two simulated boards on the MicroPython unix port, sharing one simulated
air (tests/blesim). A sensor (aioble + aioble_pm) bonds with a phone that uses private
addresses, reboots (a new process on the same bonds.zms), and the phone reconnects over
a fresh RPA: the sensor recognises the bonded peer and re-encrypts without pairing.
With aioble (see README) the two boards are separate processes running aioble; without
it the same story runs at the raw `bluetooth` level in one process (demo_raw.py)."""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "blesim"))
import mpharness  # noqa: E402
from hub import Hub  # noqa: E402


def start(script, cwd, port, **env):
    e = mpharness.micropython_env()
    e.update(BLESIM_HUB=str(port), **env)
    return subprocess.Popen([mpharness.micropython_exe(), os.path.join(ROOT, "examples", script)],
                            cwd=cwd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=60):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        out += "\n(timed out)"
    sys.stdout.write(out)
    sys.stdout.flush()
    return proc.returncode


def main():
    if "--raw" in sys.argv or not any(
            os.path.isdir(os.path.join(d, "aioble")) for d in mpharness.micropython_path().split(os.pathsep)):
        if "--raw" not in sys.argv:
            print("(aioble not found in ~/.micropython/lib or MICROPYPATH: running the raw-bluetooth "
                  "version; see README for getting aioble)")
        proc = mpharness.run([os.path.join(ROOT, "examples", "demo_raw.py")], cwd=tempfile.mkdtemp(prefix="demo-"))
        sys.stdout.write(proc.stdout)
        return proc.returncode
    board = tempfile.mkdtemp(prefix="sensor-")  # the sensor's filesystem: bonds.zms lives here
    phone_dir = tempfile.mkdtemp(prefix="phone-")
    sensor_env = dict(BLESIM_NAME="sensor", BLESIM_PUBLIC="a4cf12345678")
    with Hub() as hub:
        phone = start("phone.py", phone_dir, hub.port, BLESIM_NAME="phone")
        print("--- sensor, boot 1")
        rc1 = finish(start("sensor.py", board, hub.port, **sensor_env))
        print("--- sensor, boot 2 (same bonds.zms)")
        rc2 = finish(start("sensor.py", board, hub.port, **sensor_env))
        print("--- phone")
        rc3 = finish(phone)
    return rc1 or rc2 or rc3


if __name__ == "__main__":
    sys.exit(main())
