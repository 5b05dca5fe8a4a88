# Client of the protected-characteristics scenario (aioble + aioble_pm, MicroPython;
# simulator and real NimBLE). Session 0: a read without auto-secure fails with aioble's
# GattError; with pm.auto_secure(True) each read pairs or re-encrypts as needed, in one
# call. argv[1]: JSON {"sessions": N}.
import asyncio
import json
import sys
import aioble
import bluetooth
import aioble_pm

SVC = bluetooth.UUID("7e5a0301-0000-4000-8000-00805f9b34fb")
SECRET = bluetooth.UUID("7e5a0302-0000-4000-8000-00805f9b34fb")
STRONG = bluetooth.UUID("7e5a0303-0000-4000-8000-00805f9b34fb")
ASK = bluetooth.UUID("7e5a0304-0000-4000-8000-00805f9b34fb")
cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
NAMES = {aioble_pm.CONN_SEC_START: "START", aioble_pm.CONN_SEC_SUCCEEDED: "SUCCEEDED", aioble_pm.CONN_SEC_FAILED: "FAILED"}
PROCS = {aioble_pm.PROC_ENCRYPTION: "ENCRYPTION", aioble_pm.PROC_BONDING: "BONDING", aioble_pm.PROC_PAIRING: "PAIRING", None: None}

pm = aioble_pm.PeerManager()
pm.sec_params(bond=True, lesc=True)
pm.register(lambda e: e.id in NAMES and print("client: event %s %s" % (NAMES[e.id], PROCS.get(e.procedure))))
pm.attach()


async def find():
    async with aioble.scan(20000, 30000, 30000, active=True) as scanner:
        async for r in scanner:
            if r.name() == "psrv":
                return r.device


async def read(what, ch):
    try:
        print("client: read %s %s" % (what, await ch.read()))
    except aioble.GattError as e:
        print("client: read %s GattError 0x%x" % (what, e._status))


async def session(n):
    conn = await (await find()).connect(timeout_ms=5000)
    svc = (await pm.services(conn, SVC))[0]
    secret = await svc.characteristic(SECRET)
    if n == 0:
        await read("secret (auto-secure off)", secret)
    pm.auto_secure(True)
    await read("secret", secret)
    await secret.write(b"by%d" % n, response=True)
    desc = await secret.descriptor(bluetooth.UUID(0x2901))
    await read("descriptor", desc)
    await read("strong", await svc.characteristic(STRONG))
    await read("ask", await svc.characteristic(ASK))
    print("client: session %d peer %s" % (n, pm.peer_id(conn)))
    await conn.disconnect()
    for _ in range(30):  # short sleeps: the unix NimBLE host runs between them
        await asyncio.sleep_ms(10)


async def main():
    for n in range(cfg.get("sessions", 1)):
        await session(n)
    print("client: end peers=%s" % pm.peer_ids())


asyncio.run(main())
