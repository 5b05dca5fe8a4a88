# Server of the protected-characteristics scenario (aioble + aioble_pm, MicroPython;
# simulator and real NimBLE). Policy "pair on insufficient authentication": no Security
# Request; the central pairs when it touches a protected characteristic, and
# pm.wait_secure() reports the outcome. argv[1]: JSON {"links": N, "secure": false};
# "secure": true sends Security Requests instead (pm.secure).
import asyncio
import json
import sys
import aioble
import bluetooth
import aioble_pm
from protected_common import SVC, SECRET, STRONG, ASK, NAME, show_events

cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}

pm = aioble_pm.PeerManager()
pm.sec_params(bond=True, lesc=True)
show_events(pm, "server")
pm.attach()
pm.authorize(lambda conn, peer_id, attr: peer_id is not None)  # bonded peers only
service = aioble.Service(SVC)
P = aioble_pm
secret = P.protect(aioble.Characteristic(service, SECRET, read=True, write=True, initial=b"s3cret"),
                   read=P.ENCRYPTED, write=P.ENCRYPTED)
P.protect(aioble.Descriptor(secret, bluetooth.UUID(0x2901), read=True, initial=b"key"), read=P.ENCRYPTED)
P.protect(aioble.Characteristic(service, STRONG, read=True, initial=b"mitm"), read=P.AUTHENTICATED)
P.protect(aioble.Characteristic(service, ASK, read=True, initial=b"asked"), read=P.AUTHORIZED)
aioble.register_services(service)


async def serve(n):
    conn = await aioble.advertise(20000, name=NAME, timeout_ms=30000)
    try:
        if cfg.get("secure"):
            peer = await pm.secure(conn, timeout_ms=10000)
        else:
            peer = await pm.wait_secure(conn, timeout_ms=20000)
        print("server: link %d secured by the central, peer %s" % (n, peer))
    except aioble_pm.SecurityError as e:
        print("server: link %d not secured: %s" % (n, e))
    while conn.is_connected():
        await asyncio.sleep_ms(20)
    print("server: link %d closed, written %s" % (n, secret.read()))


async def main():
    for n in range(cfg.get("links", 1)):
        await serve(n)


asyncio.run(main())
