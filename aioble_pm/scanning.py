"""aioble helpers for meeting bonded peers (PeerManager.scan/connect/advertise, loaded on
first use): scan results of whitelisted peers with their RPAs resolved, a connect to a
bonded peer found behind whatever RPA it uses now, and advertising that keeps only
whitelisted centrals. aioble's public API only (its private parts stay in aiohooks.py)."""
import asyncio
import time
import aioble


class Scan:
    """`async with pm.scan(wl) as s: async for result, peer_id in s`: aioble scan results
    of whitelisted peers (RPAs resolved through the whitelist), each address once if
    dedup. Leaving the `async with` (a break too) stops the scan; a bare `async for`
    that breaks leaves it running until duration_ms, close(), or aioble's next scan or
    connect."""

    def __init__(self, wl, duration_ms, interval_us, window_us, active, dedup):
        self._wl = wl
        self._args = (duration_ms, interval_us, window_us, active)
        self._dedup = dedup
        self._seen = set()
        self._scan = None
        self._it = None

    def __aiter__(self):
        return self

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        await self.close()

    @property
    def running(self):
        """True while the underlying aioble scan runs."""
        return self._scan is not None

    async def __anext__(self):
        if self._scan is None:
            d, i, w, a = self._args
            self._scan = aioble.scan(d, interval_us=i, window_us=w, active=a)
            self._it = await self._scan.__aenter__()
        while True:
            try:
                result = await self._it.__anext__()
            except StopAsyncIteration:
                await self.close()
                raise
            dev = result.device
            pid = self._wl.match(dev.addr_type, dev.addr)
            if pid is None:
                continue
            key = (dev.addr_type, bytes(dev.addr))
            if self._dedup:
                if key in self._seen:
                    continue
                self._seen.add(key)
            return result, pid

    async def close(self):
        if self._scan is not None:
            s, self._scan = self._scan, None
            await s.__aexit__(None, None, None)


async def connect(pm, peer_id, timeout_ms, secure):
    """Scan for the peer (any RPA it uses now), connect, optionally secure."""
    wl = pm.whitelist([peer_id], device_privacy=True)  # our own bond: its identity address too
    start = time.ticks_ms()
    found = None
    scan = Scan(wl, timeout_ms, 30000, 30000, False, False)
    try:
        async for result, _ in scan:
            found = result.device
            break
    finally:
        await scan.close()
    if found is None:
        raise asyncio.TimeoutError("peer %d not seen advertising in %d ms" % (peer_id, timeout_ms))
    left = max(500, timeout_ms - time.ticks_diff(time.ticks_ms(), start))
    conn = await found.connect(timeout_ms=left)
    if secure:
        try:
            await pm.secure(conn, timeout_ms=left)
        except Exception:
            await conn.disconnect()
            raise
    return conn


async def advertise(pm, interval_us, wl, kwargs):
    """Advertise until a whitelisted central connects (wl None: any); refuse the others."""
    previous = pm.accept(wl)
    try:
        while True:
            conn = await aioble.advertise(interval_us, **kwargs)
            if pm.connected(conn):  # refused ones never get a link
                return conn
            # refused by the PM's IRQ handler (already disconnected): advertise again
            await conn.disconnected(timeout_ms=2000)
    finally:
        pm.accept(previous)
