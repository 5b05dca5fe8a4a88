# A test "board" for tests/test_aioble_pm.py: an aioble peripheral like
# tests/blesim/examples/aioble_peripheral.py (same name, service, characteristic) but with
# aioble_pm attached, so a ble_secrets.json left by plain aioble is migrated at boot.
import asyncio
import os
import aioble
import bluetooth
import aioble_pm

SVC = bluetooth.UUID("7e5a0001-0000-4000-8000-00805f9b34fb")
CHR = bluetooth.UUID("7e5a0002-0000-4000-8000-00805f9b34fb")

pm = aioble_pm.PeerManager()
pm.register(lambda ev: print("B event", ev))
pm.attach()
print("B boot peers=%s json=%s" % (pm.peer_ids(), sorted(f for f in os.listdir() if "secrets" in f)))
service = aioble.Service(SVC)
char = aioble.Characteristic(service, CHR, read=True, write=True, notify=True, initial=b"hello")
aioble.register_services(service)
aioble.config(bond=True)


async def main():
    conn = await aioble.advertise(40000, name="blesim-p", services=[SVC], timeout_ms=10000)
    print("B connected peer_id=%s" % pm.peer_id(conn))
    await char.written(timeout_ms=5000)
    print("B written", char.read(), "encrypted=%d" % conn.encrypted)
    await conn.disconnected(timeout_ms=10000)


asyncio.run(main())
