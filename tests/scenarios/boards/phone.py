# The central of the demo scenario on both stacks: unmodified aioble with its own bond
# store, no simulator calls (examples/phone.py adds RPAs, which only the simulator has).
# Connects to "sensor" for two sessions; between them the sensor reboots.
import asyncio
import time
import aioble


async def session(n):
    device = None
    async with aioble.scan(20000, 30000, 30000, active=True) as scanner:
        async for r in scanner:
            if r.name() == "sensor":
                device = r.device
                break
    conn = await device.connect(timeout_ms=5000)
    t0 = time.ticks_ms()
    while not conn.encrypted and time.ticks_diff(time.ticks_ms(), t0) < 25000:
        await asyncio.sleep_ms(10)  # the sensor asks for security; NimBLE pairs or re-encrypts
    print("phone: session %d encrypted=%d bonded=%d" % (n, conn.encrypted, conn.bonded))
    await asyncio.sleep_ms(200)
    await conn.disconnect()
    await asyncio.sleep_ms(300)


async def main():
    aioble.config(bond=True)
    await session(1)
    await session(2)


asyncio.run(main())
