# The simulator's stand-in for the firmware module native/aioble_pm_cccd: importable only
# on a device "built with it" (blesim.cccd_module(ble, True), or BLESIM_CCCD=1 for a
# process's own device), like a firmware that has or lacks the C module.
import blesim

_dev = blesim.own()
if not _dev.cccd_fw:
    raise ImportError("no module named '_aioble_pm_cccd'")


def install():
    return _dev._cccd_install()


def changed(start, end):
    _dev._cccd_changed(start, end)


def sc_handle():
    return _dev._cccd_sc_handle()
