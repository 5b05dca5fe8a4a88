"""`bluetooth` for the MicroPython unix port, backed by the BLE simulator (tests/blesim).
On a board this is the C module; here BLE() returns the process's simulated device (BLE is a type, as in MicroPython)."""
from micropython import const
import blesim
from blesim import UUID
from blesim.api import BLE  # a type; BLE() is the process's own simulated device

FLAG_READ = const(0x0002)
FLAG_WRITE_NO_RESPONSE = const(0x0004)
FLAG_WRITE = const(0x0008)
FLAG_NOTIFY = const(0x0010)
FLAG_INDICATE = const(0x0020)

