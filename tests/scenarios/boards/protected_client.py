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
from protected_common import SVC, SECRET, STRONG, ASK, show_events, find_server

cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}

pm = aioble_pm.PeerManager()
pm.sec_params(bond=True, lesc=True)
show_events(pm, "client")
pm.attach()


async def read(what, ch):
    try:
        print("client: read %s %s" % (what, await ch.read()))
    except aioble.GattError as e:
        print("client: read %s GattError 0x%x" % (what, e._status))


async def session(n):
    conn = await (await find_server()).connect(timeout_ms=5000)
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
