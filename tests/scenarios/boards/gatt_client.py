# GATT client of the remote database cache scenario and benchmark (aioble + aioble_pm,
# MicroPython; simulator and real NimBLE). argv[1]: JSON {"sessions": [...]}; each
# session connects to "gsrv", secures the link, gets the service (pm.services, or
# aioble's own lookup with "plain", or pm.services(cached=False) with "fresh"), reads VAL
# and prints the time and the ATT PDUs from connect to the read. "sc": then ask the
# server to indicate Service Changed at the handle the cache lists.
import asyncio
import json
import os
import struct
import sys
import time
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


def att_pdus():
    """ATT PDUs on this board's links so far: the simulator counts them; on real NimBLE
    tools/realstack/hcirelay.py keeps the count in MICROPYBTUART.att."""
    try:
        import blesim
    except ImportError:
        with open(os.getenv("MICROPYBTUART") + ".att") as f:
            return int(f.read())
    return blesim.att_pdus(bluetooth.BLE())


async def find():
    async with aioble.scan(20000, 30000, 30000, active=True) as scanner:
        async for r in scanner:
            if r.name() == "gsrv":
                return r.device


async def session(n, s):
    device = await find()
    conn = await device.connect(timeout_ms=5000)
    t0, p0 = time.ticks_ms(), att_pdus()
    peer = await pm.secure(conn)
    t1, p1 = time.ticks_ms(), att_pdus()
    if s.get("plain"):
        svc = await conn.service(SVC)
    else:
        svc = (await pm.services(conn, SVC, cached=not s.get("fresh")))[0]
    value = await (await svc.characteristic(VAL)).read()
    t2, p2 = time.ticks_ms(), att_pdus()
    print("client: session %d peer %s read %s connect_to_read_ms=%d services_to_read_ms=%d att_pdus=%d"
          % (n, peer, value, time.ticks_diff(t2, t0), time.ticks_diff(t2, t1), p2 - p0))
    if p1 != p0:
        print("client: %d ATT PDUs while securing" % (p1 - p0))
    if s.get("sc"):
        gatt = (await pm.services(conn, bluetooth.UUID(0x1801)))[0]
        h = int(str(await gatt.characteristic(bluetooth.UUID(0x2A05))).split()[2])  # "Characteristic: END VALUE ..."
        ctl = await svc.characteristic(CTL)
        await ctl.write(struct.pack("<HHH", h, s["sc"][0], s["sc"][1]), response=True)
        for _ in range(30):  # short sleeps: the unix NimBLE host runs between them
            await asyncio.sleep_ms(10)
        print("client: asked for Service Changed at %d, cache stored: %s" % (h, pm.forget_services(peer)))
    await conn.disconnect()
    for _ in range(30):
        await asyncio.sleep_ms(10)


async def main():
    for n, s in enumerate(cfg.get("sessions", [{}])):
        await session(n, s)
    print("client: end peers=%s" % pm.peer_ids())


asyncio.run(main())
