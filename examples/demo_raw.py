# The demo without aioble: the same story as sensor.py + phone.py, in one process at the
# raw `bluetooth` level (aioble_pm works there too: attach(ble, irq)). A sensor bonds
# with a phone that uses private addresses, reboots (a new PeerManager on the same
# bonds.zms), and the phone reconnects over a fresh RPA.
import asyncio
import blesim
import aioble_pm


def hexaddr(a):
    return ":".join("%02x" % b for b in a)


class Phone:
    """A phone-like central with an aioble-style dict of bonds, using RPAs."""

    def __init__(self):
        self.ble = blesim.device("phone")
        self.bonds = {}
        self.handle = None
        self.ble.irq(self.irq)
        self.ble.active(True)
        self.ble.config(bond=True, addr_mode=2)
        blesim.rpa_timeout(self.ble, 1)

    def irq(self, event, data):
        if event == 7:  # _IRQ_PERIPHERAL_CONNECT
            self.handle = data[0]
        elif event == 8:
            self.handle = None
        elif event == 29:  # _IRQ_GET_SECRET
            sec_type, index, key = data
            if key is None:
                values = [v for (t, _), v in self.bonds.items() if t == sec_type]
                return values[index] if index < len(values) else None
            return self.bonds.get((sec_type, bytes(key)))
        elif event == 30:  # _IRQ_SET_SECRET
            sec_type, key, value = data
            if value is None:
                return self.bonds.pop((sec_type, bytes(key)), None) is not None
            self.bonds[(sec_type, bytes(key))] = bytes(value)
            return True


links = []  # the sensor's connection handles


def sensor_irq(event, data):  # the app's own IRQ handler: whatever the PM does not answer
    if event == 1:  # _IRQ_CENTRAL_CONNECT
        links.append(data[0])
    elif event == 2:
        links.remove(data[0])


def boot_sensor(ble):
    pm = aioble_pm.PeerManager()  # bonds.zms in the current directory
    pm.register(lambda ev: print("sensor: event", ev) if ev.id in (1, 3, 4) else None)
    pm.attach(ble, sensor_irq)
    ble.active(True)
    ble.gap_advertise(40000, b"\x02\x01\x06\x07\x09sensor")
    print("sensor: boot with %d bonded peer(s)" % len(pm.peer_ids()))
    return pm


async def session(n, pm, sensor, phone):
    blesim.advance(1500)  # the phone's RPA period passes: a fresh address
    rpa = blesim.ota_addr(phone.ble)[1]
    print("phone: session %d from RPA %s" % (n, hexaddr(rpa)))
    phone.ble.gap_connect(*blesim.ota_addr(sensor))
    while phone.handle is None or not links:
        await asyncio.sleep_ms(5)
    conn = links[0]
    print("sensor: connection: %s" % ("bonded peer %d" % pm.peer_id(conn) if pm.peer_id(conn) is not None else "unknown device"))
    print("sensor: secured, peer", await pm.secure(conn))
    print("sensor: the phone's RPA %s resolves to peer %s" % (hexaddr(rpa), pm.resolve(1, rpa)))
    pm.show()
    phone.ble.gap_disconnect(phone.handle)
    while links:
        await asyncio.sleep_ms(5)


async def main():
    sensor = blesim.device("sensor", public=True)
    phone = Phone()
    print("--- sensor, boot 1")
    pm = boot_sensor(sensor)
    await session(1, pm, sensor, phone)
    print("--- sensor, boot 2 (same bonds.zms)")
    blesim.reboot(sensor)
    pm = boot_sensor(sensor)
    await session(2, pm, sensor, phone)


asyncio.run(main())
