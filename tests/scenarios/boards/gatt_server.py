# GATT server of the remote database cache scenario (aioble + aioble_pm, MicroPython; runs
# on the simulator and on real NimBLE). Serves `links` connections one after another
# (argv[1]: JSON {"links": N}); each is secured (bonded). A write to CTL of
# <handle, start, end> (u16 LE each) makes it indicate Service Changed's value
# <start, end> at that handle: stock MicroPython registers no Service Changed of its own,
# but NimBLE sends an indication for any handle (ble_gattc_indicate_custom).
import asyncio
import json
import struct
import sys
import aioble
import bluetooth
import aioble_pm

SVC = bluetooth.UUID("7e5a0101-0000-4000-8000-00805f9b34fb")
VAL = bluetooth.UUID("7e5a0102-0000-4000-8000-00805f9b34fb")
CTL = bluetooth.UUID("7e5a0103-0000-4000-8000-00805f9b34fb")
cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}

pm = aioble_pm.PeerManager()
pm.sec_params(bond=True, lesc=True)
pm.attach()
service = aioble.Service(SVC)
aioble.Characteristic(service, VAL, read=True, notify=True, initial=b"21.5C")
ctl = aioble.Characteristic(service, CTL, write=True, capture=True)
env = aioble.Service(bluetooth.UUID(0x181A))
aioble.Characteristic(env, bluetooth.UUID(0x2A6E), read=True, initial=b"\x10\x20")
aioble.Characteristic(env, bluetooth.UUID(0x2A6F), read=True, notify=True, initial=b"\x33")
aioble.register_services(service, env)


async def serve(n):
    conn = await aioble.advertise(20000, name="gsrv", timeout_ms=30000)
    peer = await pm.secure(conn)
    print("server: link %d secured, peer %s" % (n, peer))
    while conn.is_connected():
        try:
            _, data = await ctl.written(timeout_ms=50)
        except asyncio.TimeoutError:
            continue
        h, start, end = struct.unpack("<HHH", data)
        aioble.core.ble.gatts_indicate(conn._conn_handle, h, struct.pack("<HH", start, end))
        print("server: indicated Service Changed %d..%d at handle %d" % (start, end, h))
    print("server: link %d closed" % n)


async def main():
    for n in range(cfg.get("links", 1)):
        await serve(n)


asyncio.run(main())
