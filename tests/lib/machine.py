"""`machine` for the unix port under the BLE simulator: the builtin module, except that
idle() lets the simulated stack run first (on a board the BLE host delivers IRQs while
the CPU idles). Without blesim loaded it is the builtin idle(). See tests/lib/time.py."""
from umachine import *  # noqa: F401,F403
import umachine as _m
import sys


def idle():
    m = sys.modules.get("blesim.air")
    if m is not None and not m.air.pumping:
        m.air.pump()
    _m.idle()
