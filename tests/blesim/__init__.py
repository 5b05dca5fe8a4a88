"""blesim: a simulated `bluetooth` module (MicroPython + NimBLE) for the unix port.

`import bluetooth` (tests/lib/bluetooth.py) gives the process's own device, like a board.
This module is the test-control side:

    blesim.device(name, public=True, layout=80)  another device in this process
    blesim.pump()                  run every queued step that is due (IRQs, frames)
    blesim.run(ms)                 pump for `ms` of wall time (other processes too)
    blesim.run_until(cond, ms)     pump until cond() is true; TimeoutError otherwise
    blesim.advance(ms)             move the simulated clock forward, then pump
    blesim.reboot(ble)             reset a device: only its Python store survives
    blesim.forget(ble, t, addr)    the device deletes that bond (ble_gap_unpair)
    blesim.rpa_timeout(ble, s)     RPA rotation period (NimBLE default 300 s)
    blesim.resolving_list(ble)     [(id type, id addr, irk MSB-first)] it holds
    blesim.ignore_security_requests(ble, n)  central drops the next n Security Requests
    blesim.resolving_list_size(ble, n)  controller resolving-list slots (None: unbounded)
    blesim.connect_hub(port)       join the air of other processes (tests/blesim/hub.py)
    blesim.cccd_module(ble, on)    the device's firmware has native/aioble_pm_cccd (import
                                   _aioble_pm_cccd works; for the own device, before import)

Environment of a process: BLESIM_HUB=port joins a hub at start; BLESIM_NAME,
BLESIM_PUBLIC (12 hex digits, or "none" for no public address), BLESIM_LAYOUT
(80 or 88) and BLESIM_CCCD=1 (the CCCD module) configure its own device. Under asyncio a background task pumps.
"""
import os
import utime as time  # the builtin (tests/lib/time.py's sleeps pump)
from .air import air
from .api import device_of
from .device import Device
from .uuid import UUID

_own = None


def own():
    """The process's own device (what bluetooth.BLE() returns)."""
    global _own
    if _own is None:
        pub = os.getenv("BLESIM_PUBLIC")
        if pub is None:
            public = True
        elif pub.lower() == "none":
            public = None
        else:
            public = bytes.fromhex(pub.replace(":", ""))
        _own = Device.make(os.getenv("BLESIM_NAME") or "own", public, int(os.getenv("BLESIM_LAYOUT") or 80))
        _own.cccd_fw = os.getenv("BLESIM_CCCD") == "1"
    return _own


def device(name="dev", public=True, layout=80):
    return Device.make(name, public, layout)


def pump():
    return air.pump()


def run(ms):
    end = time.ticks_add(time.ticks_ms(), ms)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        if not air.pump():
            time.sleep_ms(1)


def run_until(cond, timeout_ms=3000):
    end = time.ticks_add(time.ticks_ms(), timeout_ms)
    while not cond():
        if time.ticks_diff(end, time.ticks_ms()) <= 0:
            raise TimeoutError("blesim.run_until: condition not met in %d ms" % timeout_ms)
        if not air.pump():
            t = air.next_due()
            if t != 0:
                time.sleep_ms(1)


def advance(ms):
    air.offset += ms
    return air.pump()


def reboot(ble):
    device_of(ble)._reboot()


def forget(ble, addr_type, addr):
    device_of(ble)._unpair((addr_type, bytes(addr)))


def rpa_timeout(ble, seconds):
    if seconds <= 0:
        raise ValueError("seconds must be > 0")
    ble = device_of(ble)
    ble.rpa_timeout_ms = int(seconds * 1000)
    ble._rpa_until = min(ble._rpa_until, air.now() + ble.rpa_timeout_ms)


def cccd_module(ble, on=True):
    device_of(ble).cccd_fw = bool(on)


def ignore_security_requests(ble, n):
    """The host of central `ble` silently drops the next `n` SMP Security Requests it
    receives (no response, no store read), as real NimBLE sometimes does with a request
    sent in the same burst as the connection event. Counts survive blesim.reboot."""
    if not isinstance(n, int) or n < 0:
        raise ValueError("n must be an int >= 0, got %r" % (n,))
    device_of(ble).secreq_ignore = n


def resolving_list_size(ble, n):
    """Slots of `ble`'s controller resolving list (None: unbounded, the default); adding
    a peer IRK beyond them fails, and that peer's RPAs stay unresolved."""
    if n is not None and (not isinstance(n, int) or n < 0):
        raise ValueError("n must be None or an int >= 0, got %r" % (n,))
    ble = device_of(ble)
    ble.rl_size = n
    if n is not None:
        del ble._rl[n:]


def att_pdus(ble):
    """ATT PDUs sent and received so far on the links of `ble` (both directions: what
    a sniffer of its links would count; discoveries as NimBLE splits them)."""
    return device_of(ble).att_pdus


def resolving_list(ble):
    return list(device_of(ble)._rl)


def ota_addr(ble):
    """(addr_type, addr): the address `ble` uses on the air now -- its public or static
    address, or in addr_mode 2 the current RPA (a new one once its period has passed)."""
    return device_of(ble)._ota()


def connect_hub(port):
    air.connect_hub(int(port))


if os.getenv("BLESIM_HUB"):
    connect_hub(os.getenv("BLESIM_HUB"))
