# Security Request policy on the BLE simulator: time from secure() (as peripheral) to an
# encrypted link, for a central that answers the first request, one whose host drops
# it (blesim.ignore_security_requests, as NimBLE sometimes does in the connection
# burst), and one that starts encryption itself (iOS on reconnect).
# Run: micropython bench/bench_secreq.py [quick]  (MICROPYPATH = tests/lib:tests:repo root)
import sys
import time
import asyncio
import blesim
import aioble_pm
from pmsim import PM, Peer, Spy, accept, disconnect

QUICK = "quick" in sys.argv
RUNS = 3 if QUICK else 10


async def _timed(a, h, timeout_ms):
    t = time.ticks_ms()
    try:
        await a.pm.secure(h, timeout_ms=timeout_ms)
        ok = 1
    except aioble_pm.SecurityError:
        ok = 0
    return time.ticks_diff(time.ticks_ms(), t), ok


async def answering():
    times = []
    for i in range(RUNS):
        a = PM()
        h = await accept(a, Peer("c%d" % i))
        ms, ok = await _timed(a, h, 20000)
        assert ok
        times.append(ms)
    return sorted(times)[len(times) // 2]


async def ignoring(timeout_ms):
    if not hasattr(blesim, "ignore_security_requests"):
        return None, None, None
    spy = Spy(blesim.device("pm"))
    a = PM(ble=spy)
    c = Peer("busy")
    h = await accept(a, c)
    blesim.ignore_security_requests(c.ble, 1)
    ms, ok = await _timed(a, h, timeout_ms)
    return ms, ok, len(spy.pairs)


async def self_encrypting():
    spy = Spy(blesim.device("pm"))
    a = PM(ble=spy)
    c = Peer("ios")
    h = await accept(a, c)
    c.ble.gap_pair(c.events(7)[-1][0])  # the first bond, the central's own doing
    while not a.ids(aioble_pm.CONN_SEC_SUCCEEDED):
        await asyncio.sleep_ms(2)
    await disconnect(a, h)
    h = await accept(a, c)
    task = asyncio.create_task(_timed(a, h, 20000))
    await asyncio.sleep_ms(20)
    c.ble.gap_pair(c.events(7)[-1][0])
    ms, ok = await task
    return ms, ok, len(spy.pairs)


async def main():
    print("bench: secreq_answering_central_to_encrypted = %d ms" % await answering())
    ms, ok, sent = await ignoring(5000)
    if ms is not None:
        print("bench: secreq_ignoring_central_secure_returned = %d ms" % ms)
        print("bench: secreq_ignoring_central_encrypted = %d bool" % ok)
        print("bench: secreq_ignoring_central_gap_pair_calls = %d calls" % sent)
    ms, ok, sent = await self_encrypting()
    print("bench: secreq_self_encrypting_central_to_encrypted = %d ms" % ms)
    print("bench: secreq_self_encrypting_central_requests_sent = %d calls" % sent)


asyncio.run(main())
