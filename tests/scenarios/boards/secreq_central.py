# Central of the Security Request scenario (aioble + aioble_pm, MicroPython; simulator
# and real NimBLE): it never secures a link itself. The peripheral's Security Request is
# answered by the host; the PM reports that procedure and judges it against our
# parameters. argv[1]: JSON {"mitm": bool}.
import asyncio
import json
import sys
import aioble_pm
from protected_common import SVC, SECRET, show_events, find_server

cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
outcome = []

pm = aioble_pm.PeerManager()
if cfg.get("mitm"):
    pm.sec_params(bond=True, mitm=True, io=aioble_pm.IO_DISPLAY_YESNO)  # the peripheral can only do Just Works
else:
    pm.sec_params(bond=True, lesc=True)
show_events(pm, "central", lambda e: e.id != aioble_pm.CONN_SEC_START and outcome.append(e.id))
pm.attach()


async def main():
    conn = await (await find_server()).connect(timeout_ms=5000)
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
