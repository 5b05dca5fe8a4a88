"""`time` for the unix port under the BLE simulator: the builtin module, except that
sleep/sleep_ms/sleep_us let the simulated stack run while they wait. On a board (and on
the unix NimBLE build) the host runs in its own task/thread, so IRQs arrive while the app
sleeps; here they do too. Without blesim loaded, or when called from inside the
simulator's pump (an IRQ handler sleeping blocks the host, as on a board), these are the
builtin sleeps. See tests/blesim/README.md ("Concurrency")."""
from utime import *  # noqa: F401,F403  (the builtin time: ticks_*, time, gmtime, ...)
import utime as _t
import sys

_CHUNK_US = 1000000  # keep each wait well inside the ticks_us half period


def _air():
    m = sys.modules.get("blesim.air")
    a = None if m is None else m.air
    return None if a is None or a.pumping else a


def _wait_us(us):
    a = _air()
    if a is None:
        _t.sleep_us(us)
        return
    while True:
        step = us if us < _CHUNK_US else _CHUNK_US
        end = _t.ticks_add(_t.ticks_us(), step)
        while True:
            a.pump()
            left = _t.ticks_diff(end, _t.ticks_us())
            if left <= 0:
                break
            due = a.next_due()  # ms until the next queued step
            if a.linked() or due is not None:
                cap = 1000 if due is None or a.linked() else max(1, due) * 1000
                left = left if left < cap else cap
            _t.sleep_us(left)
        us -= step
        if us <= 0:
            return


def sleep(seconds):
    _wait_us(int(seconds * 1000000))


def sleep_ms(ms):
    _wait_us(int(ms) * 1000)


def sleep_us(us):
    _wait_us(int(us))
