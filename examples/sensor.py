# A BLE sensor (peripheral) on aioble with aioble_pm managing its bonds. Runs unchanged
# on an ESP32 (bonds in the "bonds" partition) and on the unix port with the simulator
# (bonds in ./bonds.zms). Each run is one boot: serve one connection, then exit.
import asyncio
import aioble
import bluetooth
import aioble_pm

SVC = bluetooth.UUID("7e5a0001-0000-4000-8000-00805f9b34fb")
CHR = bluetooth.UUID("7e5a0002-0000-4000-8000-00805f9b34fb")

pm = aioble_pm.PeerManager()  # flash=None: the "bonds" partition, else ./bonds.zms
pm.sec_params(bond=True, lesc=True)
pm.attach()  # before the stack starts: bonds come from flash, never ble_secrets.json

service = aioble.Service(SVC)
reading = aioble.Characteristic(service, CHR, read=True, notify=True, initial=b"21.5C")
aioble.register_services(service)


def on_event(ev):
    if ev.id in (aioble_pm.BONDED_PEER_CONNECTED, aioble_pm.CONN_SEC_SUCCEEDED, aioble_pm.CONN_SEC_FAILED):
        print("sensor: event", ev)


pm.register(on_event)


async def main():
    print("sensor: boot with %d bonded peer(s)" % len(pm.peer_ids()))
    conn = await aioble.advertise(40000, name="sensor", services=[SVC], timeout_ms=15000)
    peer = pm.peer_id(conn)
    print("sensor: connection from %s: %s" % (conn.device, "bonded peer %d" % peer if peer is not None else "unknown device"))
    peer = await pm.secure(conn)  # re-encrypt with stored keys, or pair and bond
    print("sensor: link encrypted=%d bonded=%d, peer %s" % (conn.encrypted, conn.bonded, peer))
    pm.show()
    await conn.disconnected(timeout_ms=15000)


asyncio.run(main())
