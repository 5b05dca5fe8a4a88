# aioble_pm demo on the MicroPython unix port: private addresses.
# A peer makes fresh resolvable private addresses (RPAs) from its IRK, as a phone does
# every ~15 minutes; we resolve them back to the peer with a Resolver holding the IRKs
# of our bonded peers.
import os
import binascii
from aioble_pm import privacy


def hexaddr(a):
    return ":".join("%02X" % b for b in a)


peers = {"phone": os.urandom(16), "watch": os.urandom(16), "sensor": os.urandom(16)}
resolver = privacy.Resolver()
for name, irk in peers.items():
    resolver.add(name, irk)
print("resolver:", resolver)

for name in ("watch", "phone", "watch"):
    addr = privacy.rpa(peers[name])
    print("%s advertises %s (%s) -> resolved to %r" % (
        name, hexaddr(addr), ("public", "static", "RPA", "NRPA", "invalid")[privacy.kind(1, addr)],
        resolver.resolve(1, addr)))

stranger = privacy.rpa(os.urandom(16))
print("stranger advertises %s -> resolved to %r" % (hexaddr(stranger), resolver.resolve(1, stranger)))

irk = binascii.unhexlify("ec0234a357c8ad05341010a60a397d9b")
print("spec sample: ah(IRK, 708194) =", binascii.hexlify(privacy.ah(irk, b"\x70\x81\x94")).decode())
