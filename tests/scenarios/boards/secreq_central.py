# Central of the Security Request scenario (aioble + aioble_pm, MicroPython; simulator
# and real NimBLE): it never secures a link itself. The peripheral's Security Request is
# answered by the host; the PM reports that procedure and judges it against our
# parameters. argv[1]: JSON {"sessions": [{"mitm": bool}, ...]}, one boot per session.
import asyncio
import json
import sys
import aioble
import bluetooth
import aioble_pm

SVC = bluetooth.UUID("7e5a0301-0000-4000-8000-00805f9b34fb")
SECRET = bluetooth.UUID("7e5a0302-0000-4000-8000-00805f9b34fb")
cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
NAMES = {aioble_pm.CONN_SEC_START: "START", aioble_pm.CONN_SEC_SUCCEEDED: "SUCCEEDED", aioble_pm.CONN_SEC_FAILED: "FAILED"}
PROCS = {aioble_pm.PROC_ENCRYPTION: "ENCRYPTION", aioble_pm.PROC_BONDING: "BONDING", aioble_pm.PROC_PAIRING: "PAIRING", None: None}
outcome = []


def on_event(e):
    if e.id in NAMES:
        print("central: event %s %s%s" % (NAMES[e.id], PROCS.get(e.procedure),
                                          "" if e.error is None else " " + str(e.error)))
        if e.id != aioble_pm.CONN_SEC_START:
            outcome.append(e.id)


pm = aioble_pm.PeerManager()
if cfg.get("mitm"):
    pm.sec_params(bond=True, mitm=True, io=aioble_pm.IO_DISPLAY_YESNO)  # the peripheral can only do Just Works
else:
    pm.sec_params(bond=True, lesc=True)
pm.register(on_event)
pm.attach()


async def find():
    async with aioble.scan(20000, 30000, 30000, active=True) as scanner:
        async for r in scanner:
            if r.name() == "psrv":
                return r.device


async def main():
    conn = await (await find()).connect(timeout_ms=5000)
    for _ in range(500):  # short sleeps: the unix NimBLE host runs between them
        if outcome:
            break
        await asyncio.sleep_ms(10)
    for _ in range(30):
        await asyncio.sleep_ms(10)
    print("central: connected %s peer %s" % (conn.is_connected(), pm.peer_id(conn)))
    if conn.is_connected():
        svc = (await pm.services(conn, SVC))[0]
        print("central: read %s" % await (await svc.characteristic(SECRET)).read())
        await conn.disconnect()
    for _ in range(30):
        await asyncio.sleep_ms(10)
    print("central: end peers=%s" % pm.peer_ids())


asyncio.run(main())
