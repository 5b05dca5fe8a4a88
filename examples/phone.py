# The other side of the demo: a phone-like central using resolvable private addresses
# (a fresh one for each session), with aioble's own bond store. Connects to "sensor"
# twice; between the sessions the sensor reboots.
import asyncio
import aioble
import aioble.core
import blesim

ble = aioble.core.ble


async def session(n):
    async with aioble.scan(10000, 30000, 30000, active=True) as scanner:
        async for r in scanner:
            if r.name() == "sensor":
                device = r.device
                break
    ble.config(addr_mode=2)  # a fresh RPA for this session, made from our IRK
    t, addr = blesim.ota_addr(ble)
    print("phone: session %d from RPA %s" % (n, ":".join("%02x" % b for b in addr)))
    conn = await device.connect(timeout_ms=5000)
    for _ in range(500):  # the sensor asks for security; NimBLE pairs or re-encrypts
        if conn.encrypted:
            break
        await asyncio.sleep_ms(10)
    print("phone: session %d encrypted=%d bonded=%d" % (n, conn.encrypted, conn.bonded))
    await asyncio.sleep_ms(200)
    await conn.disconnect()
    await asyncio.sleep_ms(300)


async def main():
    aioble.config(bond=True)
    blesim.rpa_timeout(ble, 1)
    await session(1)
    blesim.advance(2000)  # the RPA period passes while the sensor reboots
    await session(2)


asyncio.run(main())
