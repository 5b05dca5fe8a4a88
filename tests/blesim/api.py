"""`bluetooth.BLE` as a type, like MicroPython's `mp_type_bluetooth_ble`.

`BLE()` returns the process's one device (the C make_new keeps a singleton in
MP_STATE_VM). A subclass instance is a new object wrapping that same singleton, as a
native-subclass instance does in MicroPython: its methods act on the process's device.
The simulated devices themselves (blesim.device.Device) are instances of this type too.
"""

# The methods of mp_type_bluetooth_ble that the simulator implements (no L2CAP, no hci_cmd)
METHODS = ("active", "config", "irq", "gap_advertise", "gap_scan", "gap_connect",
           "gap_disconnect", "gap_pair", "gap_passkey", "gatts_register_services",
           "gatts_read", "gatts_write", "gatts_notify", "gatts_indicate", "gatts_set_buffer",
           "gattc_discover_services", "gattc_discover_characteristics",
           "gattc_discover_descriptors", "gattc_read", "gattc_write", "gattc_exchange_mtu")


def _own():
    import blesim  # late: blesim imports this module

    return blesim.own()


class BLE:
    def __new__(cls, *args, **kw):
        if cls is BLE:
            return _own()  # MicroPython ignores the arguments too
        return object.__new__(cls)

    def __getattr__(self, name):
        d = _own()
        if d is self:
            raise AttributeError(name)
        return getattr(d, name)


def _delegate(name):
    def method(self, *args, **kw):
        return getattr(_own(), name)(*args, **kw)

    return method


for _n in METHODS:
    setattr(BLE, _n, _delegate(_n))


def device_of(ble):
    """The simulated device behind `ble` (a device, or a BLE-subclass instance)."""
    from .device import Device

    return ble if isinstance(ble, Device) else _own()
