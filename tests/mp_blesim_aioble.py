# Unmodified aioble as the process's own device, under asyncio, against a scripted raw
# peer in the same process (the background pump task delivers the IRQs).
import asyncio
import bluetooth
import blesim
from mptest import need, eq

_SVC = bluetooth.UUID(0x181A)
_CHR = bluetooth.UUID(0x2A6E)


async def test_aioble_central_against_scripted_peripheral():
    aioble = need("aioble")
    peer = blesim.device("peer")
    writes = []
    peer.irq(lambda ev, data: writes.append(data[1]) if ev == 3 else None)
    peer.active(True)
    ((h,),) = peer.gatts_register_services(((_SVC, ((_CHR, bluetooth.FLAG_READ | bluetooth.FLAG_WRITE),)),))
    peer.gatts_write(h, b"\x10\x20")
    peer.gap_advertise(30000, b"\x02\x01\x06\x05\x09peer")
    found = None
    async with aioble.scan(2000, 30000, 30000) as scanner:
        async for r in scanner:
            if r.name() == "peer":
                found = r.device
                break
    conn = await found.connect(timeout_ms=2000)
    char = await (await conn.service(_SVC)).characteristic(_CHR)
    eq(await char.read(), b"\x10\x20")
    await char.write(b"\x30", response=True)
    eq((writes, peer.gatts_read(h)), ([h], b"\x30"))
    await conn.disconnect()
