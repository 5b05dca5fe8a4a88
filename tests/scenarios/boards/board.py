# A scenario board at the raw `bluetooth` level with aioble_pm attached (MicroPython;
# runs unchanged on the simulator and on real NimBLE, and needs no aioble, so CI runs
# it). The host passes the board's settings as JSON in argv[1]; the board prints what
# happened as "NAME: ..." lines, which the host test asserts on.
#
# Settings: name; role ("central" | "peripheral"); sec (kwargs of pm.sec_params, or
# None to refuse pairing); max_peers; when_full ("reject"); at_boot (list of "delete_all",
# "accept_bonded", "reflash" (boot on an erased store), "restore:HEXKEY:PATH" (pm.restore
# before attach), "window:MS" (pm.pairing_window), "caps" (print pm.capabilities()));
# pin_all (pin every peer after serving); export ("HEXKEY:PATH": pm.export at the end); passkey / numcmp / allow_repair (answers to those events);
# peripheral: links (connections to take, at once), secure, secure_timeout_ms,
# set_app_data, db (1, or 2: a characteristic inserted before CHR), notify (after
# securing, write CHR with send_update), db_changed (pm.local_db_changed() after
# securing); central: target (hex address), sessions (list of {forget, secure, read,
# wait_ms, subscribe ([handle, bits] CCCD writes), expect (handle: wait for its
# notification/indication, print it), hold_ms}).
import asyncio
import json
import os
import sys
import time
import bluetooth
from micropython import const
import aioble_pm
import irqtrace

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_READ_RESULT = const(15)
_IRQ_GATTC_READ_DONE = const(16)
_IRQ_GATTC_WRITE_DONE = const(17)
_IRQ_GATTC_NOTIFY = const(18)
_IRQ_GATTC_INDICATE = const(19)
_IRQ_ENCRYPTION_UPDATE = const(28)

SVC = bluetooth.UUID("7e5a0001-0000-4000-8000-00805f9b34fb")
CHR = bluetooth.UUID("7e5a0002-0000-4000-8000-00805f9b34fb")
CHR2 = bluetooth.UUID("7e5a0003-0000-4000-8000-00805f9b34fb")

cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
NAME = cfg.get("name", "board")
TARGET = bytes.fromhex(cfg.get("target", "00" * 6))


def say(fmt, *args):
    print(NAME + ": " + (fmt % args if args else fmt))


class State:
    # plain values set by the IRQ handler and polled by the tasks: on the unix NimBLE
    # build IRQs run as scheduled callbacks, and a loop that sleeps in one long poll()
    # runs none of them (nor NimBLE's host), so nothing here waits without polling
    open = {}           # handle -> True while connected
    connects = 0        # connect IRQs seen, failed connects included
    opened = 0          # connections made
    encrypted = {}      # handle -> last ENCRYPTION_UPDATE said encrypted
    seen = None         # (addr_type, addr) of the scan target when found
    scan_done = read_done = False
    read = None
    write_status = None
    updates = []        # (handle, value) of notifications and indications received


st = State()


async def until(cond, ms, what):
    t0 = time.ticks_ms()
    while not cond():
        if time.ticks_diff(time.ticks_ms(), t0) > ms:
            raise OSError("%s: not within %d ms" % (what, ms))
        await asyncio.sleep_ms(10)


def app_irq(event, data):
    # called for what the PM does not answer (it answers the secret store itself)
    if event in (_IRQ_CENTRAL_CONNECT, _IRQ_PERIPHERAL_CONNECT):
        st.open[data[0]] = True
        st.connects += 1
        st.opened += 1
    elif event in (_IRQ_CENTRAL_DISCONNECT, _IRQ_PERIPHERAL_DISCONNECT):
        st.open.pop(data[0], None)
        st.encrypted.pop(data[0], None)
        if event == _IRQ_PERIPHERAL_DISCONNECT and data[0] == 0xFFFF:
            st.connects += 1  # a connect that failed
    elif event == _IRQ_SCAN_RESULT:
        if st.seen is None and bytes(data[1]) == TARGET:
            st.seen = (data[0], bytes(data[1]))
            ble.gap_scan(None)
    elif event == _IRQ_SCAN_DONE:
        st.scan_done = True
    elif event == _IRQ_GATTC_READ_RESULT:
        st.read = bytes(data[2])
    elif event == _IRQ_GATTC_READ_DONE:
        st.read_done = True
    elif event == _IRQ_GATTC_WRITE_DONE:
        st.write_status = data[2]
    elif event in (_IRQ_GATTC_NOTIFY, _IRQ_GATTC_INDICATE):
        st.updates.append((data[1], bytes(data[2])))
    elif event == _IRQ_ENCRYPTION_UPDATE:
        st.encrypted[data[0]] = bool(data[1])
        say("link encrypted=%d authenticated=%d bonded=%d key_size=%d", *data[1:])


ble = bluetooth.BLE()
if os.getenv("AIOBLE_PM_IGNORE_SECREQ"):  # simulator only (stacks.py; on NimBLE the relay drops them)
    import blesim

    blesim.ignore_security_requests(ble, int(os.getenv("AIOBLE_PM_IGNORE_SECREQ")))
if "reflash" in cfg.get("at_boot", ()):
    try:
        os.remove("bonds.zms")  # the default store's image in the board's directory
    except OSError:
        pass
pm = aioble_pm.PeerManager(max_peers=cfg.get("max_peers", 8),
                           when_full=aioble_pm.REJECT if cfg.get("when_full") == "reject" else aioble_pm.EVICT_LRU)
params = cfg.get("sec", {"bond": True})
if params is None:
    pm.sec_params(None)
else:
    pm.sec_params(**params)


def on_event(ev):
    if ev.id == aioble_pm.PASSKEY_REQUEST and "passkey" in cfg:
        say("event PASSKEY_REQUEST: answer %d", cfg["passkey"])
        pm.passkey_reply(ev.conn, cfg["passkey"])
    elif ev.id == aioble_pm.NUMERIC_COMPARISON and "numcmp" in cfg:
        say("event NUMERIC_COMPARISON: answer %s", cfg["numcmp"])
        pm.numcmp_reply(ev.conn, cfg["numcmp"])
    elif ev.id == aioble_pm.CONN_SEC_CONFIG_REQ and cfg.get("allow_repair"):
        say("event CONN_SEC_CONFIG_REQ: allowed")
        ev.allow()
    else:  # "<Event NAME conn=.. peer_id=.. ...>": the name, the peer and the reason
        say("event %s peer_id=%s%s", repr(ev).split()[1], ev.peer_id,
            "" if ev.error is None else " reason=%s" % getattr(ev.error, "reason", ev.error))


pm.register(on_event)
for action in cfg.get("at_boot", ()):
    if action.startswith("restore:"):  # before attach: NimBLE loads our IRK as it starts
        _, key, path = action.split(":", 2)
        with open(path, "rb") as f:
            say("restored peers=%s", pm.restore(f.read(), key=bytes.fromhex(key)))
pm.attach(irqtrace.TracedBLE(ble), app_irq)
ble.active(True)
_CHR = (CHR, bluetooth.FLAG_READ | bluetooth.FLAG_NOTIFY)
if cfg.get("db", 1) == 2:
    ((_, CHR_HANDLE),) = pm.register_services(((SVC, ((CHR2, bluetooth.FLAG_READ | bluetooth.FLAG_INDICATE), _CHR)),))
else:
    ((CHR_HANDLE,),) = pm.register_services(((SVC, (_CHR,)),))
if cfg.get("role") != "central":
    say("chr handle %d", CHR_HANDLE)
for action in cfg.get("at_boot", ()):
    if action == "delete_all":
        pm.delete_all()
    elif action.startswith("window:"):  # pm.pairing_window(MS): new bonds only while open
        pm.pairing_window(int(action[7:]))
    elif action == "caps":
        c = pm.capabilities()
        say("caps binding=%s passkey_as_central=%s peers=%d max_peers=%d", c["binding"], c["passkey_as_central"],
            c["peers"], c["max_peers"])
    elif action == "accept_bonded":
        # device privacy: a bonded central that gave an IRK may still use its identity
        # address (MicroPython and BlueZ centrals do); network privacy would refuse it
        pm.accept(pm.whitelist(device_privacy=True))
    say("at boot: %s", action)


def adv_payload(name):
    n = name.encode()
    return bytes((2, 0x01, 0x06, len(n) + 1, 0x09)) + n


async def secure(conn):
    t0 = time.ticks_ms()
    try:
        peer = await pm.secure(conn, timeout_ms=cfg.get("secure_timeout_ms", 20000))
        say("secure ok peer_id=%s", peer)
    except aioble_pm.SecurityError as e:
        say("secure failed reason=%s", e.reason)
    say("secure took %d ms", time.ticks_diff(time.ticks_ms(), t0))


async def link(conn, serving):
    say("connected peer_id=%s (links open: %d)", pm.peer_id(conn), len(st.open))
    if cfg.get("secure") and conn in st.open and pm.connected(conn):  # not a refused central
        await secure(conn)
        if cfg.get("notify") or cfg.get("db_changed"):
            await asyncio.sleep_ms(300)  # the central subscribes meanwhile (first link)
        if cfg.get("notify") and conn in st.open:
            ble.gatts_write(CHR_HANDLE, b"boot", True)
            say("notified")
        if cfg.get("db_changed") and conn in st.open:
            say("local_db_changed %s", pm.local_db_changed())
    await until(lambda: conn not in st.open, 30000, "the disconnection")
    serving.discard(conn)  # the controller may give the next link the same handle
    say("disconnected")


async def serve():
    """Peripheral: take `links` connections one after another, secure each if asked,
    return when all have ended."""
    tasks, serving = [], set()
    for _ in range(cfg.get("links", 1)):
        # one link at a time: on btvirt, advertising restarted while a link is open
        # never yields a connection the host reports
        await until(lambda: not st.open, 30000, "the end of the previous link")
        seen = st.connects
        ble.gap_advertise(20000, adv_payload(cfg.get("adv_name", "board")))
        await until(lambda: st.connects > seen, cfg.get("adv_timeout_ms", 30000), "a connection")
        new = [c for c in st.open if c not in serving]
        for conn in new:
            serving.add(conn)
            tasks.append(asyncio.create_task(link(conn, serving)))
        if not new:
            say("a connection that ended at once")
    ble.gap_advertise(None)
    for t in tasks:
        await t


async def visit(session):
    """Central: find the target's advertising, connect, secure or wait, disconnect."""
    if session.get("forget"):
        pm.delete_all()
        say("forgot all bonds")
    for attempt in range(5):  # btvirt fails a connect at once if the peer stopped advertising
        st.seen = None
        st.scan_done = False
        ble.gap_scan(30000, 30000, 30000, True)
        await until(lambda: st.scan_done, 31000, "the end of the scan")
        if st.seen is None:
            say("target not found")
            return
        seen, made = st.connects, st.opened
        try:
            ble.gap_connect(st.seen[0], st.seen[1])
        except OSError as e:  # NimBLE still busy with the scan it just stopped
            say("connect refused by the host (%s)", e)
            await asyncio.sleep_ms(100)
            continue
        try:
            await until(lambda: st.connects > seen, 3000, "the connection")
        except OSError:  # the peer stopped advertising (another central won): cancel
            try:
                ble.gap_connect(None)
            except OSError:
                pass  # it ended by itself meanwhile (NimBLE: no connect in progress)
        if st.opened > made:
            break
        say("connect failed")
    else:
        return
    if not st.open:
        say("disconnected at once")  # refused by the peripheral (its accept list)
        return
    conn = list(st.open)[0]
    say("connected peer_id=%s", pm.peer_id(conn))
    if session.get("secure"):
        await secure(conn)
    else:  # the peripheral asks for security; NimBLE pairs or re-encrypts by itself
        try:
            await until(lambda: st.encrypted.get(conn) or conn not in st.open, session.get("wait_ms", 25000),
                        "encryption")
        except OSError as e:
            say("%s", e)
    for handle, bits in session.get("subscribe", ()):
        if conn in st.open:
            st.write_status = None
            ble.gattc_write(conn, handle, bytes((bits, 0)), 1)
            await until(lambda: st.write_status is not None or conn not in st.open, 3000, "the CCCD write")
            say("cccd %d=%d status %s", handle, bits, st.write_status)
    if "expect" in session and conn in st.open:
        h = session["expect"]
        try:
            await until(lambda: any(u[0] == h for u in st.updates), 5000, "an update of handle %d" % h)
            say("update %d %s", h, [u[1] for u in st.updates if u[0] == h][-1].hex())
        except OSError as e:
            say("%s", e)
        st.updates = []
    if conn in st.open and session.get("read"):
        st.read_done = False
        ble.gattc_read(conn, session["read"])
        await until(lambda: st.read_done, 3000, "the read")
        say("read %s", st.read)
    await asyncio.sleep_ms(session.get("hold_ms", 200))
    if conn in st.open:
        ble.gap_disconnect(conn)
        await until(lambda: conn not in st.open, 5000, "the disconnection")
    say("disconnected")


async def main():
    say("boot peers=%s", pm.peer_ids())
    for p in pm.peer_ids():
        say("app_data %d %s", p, pm.app_data(p))
    if cfg.get("role") == "central":
        for s in cfg.get("sessions", [{}]):
            await visit(s)
    else:
        await serve()
        if cfg.get("pin_all"):
            for p in pm.peer_ids():
                pm.pin(p, True)
                say("pinned %d", p)
        if "set_app_data" in cfg:
            for p in pm.peer_ids():
                pm.set_app_data(p, cfg["set_app_data"].encode())
                say("set app_data %d", p)
    if "export" in cfg:
        key, path = cfg["export"].split(":", 1)
        data = pm.export(key=bytes.fromhex(key))
        with open(path, "wb") as f:
            f.write(data)
        say("exported %d bytes", len(data))
    say("end peers=%s", pm.peer_ids())


asyncio.run(main())
