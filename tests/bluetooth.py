"""`bluetooth` for the MicroPython unix port, backed by the BLE simulator (tests/blesim).
On a board this is the C module; here BLE() returns the process's simulated device."""
from micropython import const
import blesim
from blesim import UUID

FLAG_READ = const(0x0002)
FLAG_WRITE_NO_RESPONSE = const(0x0004)
FLAG_WRITE = const(0x0008)
FLAG_NOTIFY = const(0x0010)
FLAG_INDICATE = const(0x0020)


def BLE():
    return blesim.own()
