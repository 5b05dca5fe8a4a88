# Firmware built without cryptolib (no SSL): storage, peer IDs, security and passkeys
# work; RPAs are neither made nor resolved, and capabilities() says so. (cryptolib is
# hidden before anything imports it: sys.modules holds None for it.)
import sys
import blesim  # the simulated controller and host do their crypto in C on a board: keep it

sys.modules["cryptolib"] = None
import aioble_pm
from aioble_pm import privacy
from mptest import raises, eq, timeout
from pmsim import PM, Peer, until, connect, disconnect, bond

IRK = bytes(range(16))


def test_privacy_without_cryptolib_says_what_is_missing():
    eq(privacy.cryptolib, None)
    eq(aioble_pm.capabilities()["cryptolib"], False)
    with raises(RuntimeError, "no cryptolib"):
        privacy.rpa(IRK)
    eq(privacy.resolve(IRK, b"\x40\x00\x00\x00\x00\x01"), False)
    r = privacy.Resolver()
    r.add(0, IRK)
    eq(len(r.tables()[3]), 0, "no IRK is held: none could be used")


@timeout(60)
async def test_bond_reboot_reencrypt_without_cryptolib():
    a = PM(params={"bond": True})
    phone = Peer("phone")
    eq(await bond(a, phone), 0)
    eq(a.pm.peer_ids(), [0])
    assert a.pm.peer(0).irk, "the peer's IRK is still stored (a later firmware may resolve it)"
    a = a.reboot(params={"bond": True})
    eq(await bond(a, phone), 0)
    eq(a.ids(aioble_pm.CONN_SEC_SUCCEEDED)[-1].procedure, aioble_pm.PROC_ENCRYPTION)
    eq(a.pm.resolve(*phone.identity()), 0, "identity addresses still map to peer IDs")
    wl = a.pm.whitelist(device_privacy=True)  # an IRK peer by its identity address
    eq(wl.match(*phone.identity()), 0)
    a.pm.delete(0)
    eq(a.pm.peer_ids(), [])
