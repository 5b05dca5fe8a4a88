# What the protected-characteristics and Security Request boards share (MicroPython):
# the service's UUIDs, a printer of the securing events, and a scan for the server.
import aioble
import bluetooth
import aioble_pm

SVC = bluetooth.UUID("7e5a0301-0000-4000-8000-00805f9b34fb")
SECRET = bluetooth.UUID("7e5a0302-0000-4000-8000-00805f9b34fb")
STRONG = bluetooth.UUID("7e5a0303-0000-4000-8000-00805f9b34fb")
ASK = bluetooth.UUID("7e5a0304-0000-4000-8000-00805f9b34fb")
NAME = "psrv"
_EVENTS = {aioble_pm.CONN_SEC_START: "START", aioble_pm.CONN_SEC_SUCCEEDED: "SUCCEEDED",
           aioble_pm.CONN_SEC_FAILED: "FAILED"}
_PROCS = {aioble_pm.PROC_ENCRYPTION: "ENCRYPTION", aioble_pm.PROC_BONDING: "BONDING",
          aioble_pm.PROC_PAIRING: "PAIRING", None: None}


def show_events(pm, who, then=None):
    """Print "WHO: event START|SUCCEEDED|FAILED PROCEDURE [error]"; then(event) after each."""

    def handler(e):
        if e.id in _EVENTS:
            print("%s: event %s %s%s" % (who, _EVENTS[e.id], _PROCS.get(e.procedure),
                                         "" if e.error is None else " " + str(e.error)))
            if then is not None:
                then(e)

    pm.register(handler)


async def find_server():
    async with aioble.scan(20000, 30000, 30000, active=True) as scanner:
        async for r in scanner:
            if r.name() == NAME:
                return r.device
