# An unmodified-aioble central for the simulator: two sessions with the peripheral,
# which reboots in between. Session 1: GATT read/subscribe/write/notify, then bond.
# Session 2 (after the peer's reboot): pair() must re-encrypt with the stored keys.
import asyncio
import aioble
import aioble.core
import bluetooth

SVC = bluetooth.UUID("7e5a0001-0000-4000-8000-00805f9b34fb")
CHR = bluetooth.UUID("7e5a0002-0000-4000-8000-00805f9b34fb")
secret_writes = []


def spy(event, data):
    if event == 30:
        secret_writes.append(data[0])


aioble.core._irq_handlers.insert(0, spy)


async def find():
    async with aioble.scan(8000, interval_us=30000, window_us=30000, active=True) as scanner:
        async for result in scanner:
            if result.name() == "blesim-p" and SVC in result.services():
                return result.device
    raise RuntimeError("peripheral not found")


async def session(n):
    device = await find()
    conn = await device.connect(timeout_ms=5000)
    print("C connected", device)
    char = await (await conn.service(SVC)).characteristic(CHR)
    before = len(secret_writes)
    if n == 1:
        print("C read", await char.read())
        await char.subscribe(notify=True)
        await char.write(b"written", response=True)
        print("C notified", await char.notified(timeout_ms=3000))
    await conn.pair(bond=True, timeout_ms=5000)
    if n == 2:
        await char.write(b"again", response=True)
    print("C session %d encrypted=%s bonded=%s secret_writes=%d" % (n, conn.encrypted, conn.bonded, len(secret_writes) - before))
    await conn.disconnect()


async def main():
    await session(1)
    await session(2)


asyncio.run(main())
