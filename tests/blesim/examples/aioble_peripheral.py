# An unmodified-aioble peripheral for the simulator (one "board"; run it once per boot).
# Serves a read/write/notify characteristic, notifies after each write, and reports what
# the stack did: encryption state and how many secrets it wrote this boot.
import asyncio
import aioble
import aioble.core
import bluetooth

SVC = bluetooth.UUID("7e5a0001-0000-4000-8000-00805f9b34fb")
CHR = bluetooth.UUID("7e5a0002-0000-4000-8000-00805f9b34fb")
secret_writes = []


def spy(event, data):  # sees every IRQ before aioble's handlers, answers nothing
    if event == 30:
        secret_writes.append(data[0])


aioble.core._irq_handlers.insert(0, spy)
service = aioble.Service(SVC)
char = aioble.Characteristic(service, CHR, read=True, write=True, notify=True, initial=b"hello")
aioble.register_services(service)
# NimBLE answers a pairing request with its own sm_bonding (0 by default in MicroPython):
# without this the link is encrypted but nothing is bonded.
aioble.config(bond=True)


async def main():
    conn = await aioble.advertise(40000, name="blesim-p", services=[SVC], timeout_ms=10000)
    print("P connected", conn.device)
    try:
        await char.written(timeout_ms=3000)
        print("P written", char.read())
        char.notify(conn, b"notified")
    except asyncio.TimeoutError:
        print("P no write")
    await conn.disconnected(timeout_ms=10000)
    await asyncio.sleep_ms(100)  # let aioble's scheduled JSON save run
    print("P done encrypted=%s bonded=%s secret_writes=%d" % (conn.encrypted, conn.bonded, len(secret_writes)))


asyncio.run(main())
