"""Access control of the local GATT database: which reads and writes of a characteristic
or descriptor need an encrypted, an authenticated or an authorized link, and the part of
the check NimBLE leaves to us.

Who enforces what (MicroPython 1.23+ with NimBLE; modbluetooth_nimble.c, ble_att_svr.c):
* characteristic, ENCRYPTED/AUTHENTICATED: NimBLE, from the registration flags, before
  any IRQ: an unencrypted link gets ATT 0x0F (Insufficient Encryption) when the store
  holds an LTK for the peer, else 0x05 (Insufficient Authentication); an encrypted link
  that is not authenticated gets 0x05 where AUTHENTICATED is asked.
* characteristic, read AUTHORIZED: NimBLE keeps the flag and checks nothing; the binding
  raises _IRQ_GATTS_READ_REQUEST for every read and fails it with the handler's non-zero
  answer. The PM answers there: 0x08 (Insufficient Authorization) unless the function
  given to pm.authorize() says yes.
* descriptor reads: the binding drops every permission of a descriptor but read/write,
  so the PM answers their READ_REQUEST with NimBLE's codes itself.
* writes AUTHORIZED, descriptor writes: cannot be enforced (the binding tells Python of a
  write only after it applied it): protect() refuses them rather than fail open.
"""
from micropython import const

ENCRYPTED = const(1)
AUTHENTICATED = const(2)  # an authenticated link is encrypted too (NimBLE asks for both)
AUTHORIZED = const(4)
_LEVELS = const(7)

_F_READ = const(0x0002)  # gatts_register_services flags (NimBLE's BLE_GATT_CHR_F_*)
_F_WRITE_NR = const(0x0004)
_F_WRITE = const(0x0008)
_READ_SHIFT = const(9)  # level << 9: READ_ENCRYPTED 0x0200, _AUTHENTICATED 0x0400, _AUTHORIZED 0x0800
_WRITE_SHIFT = const(12)  # level << 12: WRITE_ENCRYPTED 0x1000, 0x2000, 0x4000
_SECURITY_BITS = const(0x7E00)

_ERR_AUTHEN = const(0x05)  # ATT error codes (Core Vol 3 Part F 3.4.1.1)
_ERR_AUTHOR = const(0x08)
_ERR_ENC = const(0x0F)


def _level(name, v):
    if type(v) is not int:
        raise TypeError("%s must be ENCRYPTED, AUTHENTICATED and/or AUTHORIZED (an int), not %s" % (name, type(v).__name__))
    if v & ~_LEVELS or v < 0:
        raise ValueError("%s=0x%x has unknown bits: use ENCRYPTED, AUTHENTICATED, AUTHORIZED (| to combine)" % (name, v))
    return v


def protect_flags(flags, read=0, write=0):
    """The flags for `ble.gatts_register_services` of a characteristic whose reads and
    writes need these levels (replacing any it had). A raw app answers
    _IRQ_GATTS_READ_REQUEST itself for read=AUTHORIZED (non-zero fails the read)."""
    if type(flags) is not int:
        raise TypeError("flags must be an int, not %s" % type(flags).__name__)
    read = _level("read", read)
    write = _level("write", write)
    if read and not flags & _F_READ:
        raise ValueError("read=%d on a characteristic that cannot be read" % read)
    if write:
        if not flags & (_F_WRITE | _F_WRITE_NR):
            raise ValueError("write=%d on a characteristic that cannot be written" % write)
        if write & AUTHORIZED:
            raise ValueError("write=AUTHORIZED cannot be enforced: MicroPython's binding tells Python "
                             "of a write only after it applied it")
    return (flags & ~_SECURITY_BITS) | read << _READ_SHIFT | write << _WRITE_SHIFT


def protect(attr, read=0, write=0):
    """Make reads/writes of an aioble Characteristic or Descriptor need ENCRYPTED,
    AUTHENTICATED and/or AUTHORIZED links (| combines; 0 removes). Call it before
    aioble.register_services(); returns attr. A central that touches it unsecured gets
    ATT 0x05/0x0F and is expected to pair (pm.wait_secure() waits for that)."""
    from . import aiohooks

    kind = aiohooks.attr_kind(attr)
    _level("read", read)
    _level("write", write)
    if kind == "descriptor":
        if write:
            raise ValueError("descriptor writes cannot be protected: MicroPython's binding drops a "
                             "descriptor's permissions and tells Python of a write after it applied it")
        if read and not attr.flags & _F_READ:
            raise ValueError("read=%d on a descriptor that cannot be read" % read)
        guard = read  # the PM checks every read of it
    else:
        attr.flags = protect_flags(attr.flags, read, write)
        guard = read & AUTHORIZED and read  # NimBLE checks the rest
    attr._pm_guard = guard  # (ours: aiohooks collects it at registration)
    return attr


def read_request(link, level, allow):
    """The answer to _IRQ_GATTS_READ_REQUEST of a guarded attribute: None (let the read
    go on, aioble's on_read still decides) or the ATT error, in NimBLE's order. allow()
    asks the app's authorizer; any error there refuses."""
    if level & (ENCRYPTED | AUTHENTICATED) and (link is None or not link.encrypted):
        return _ERR_ENC if link is not None and link.peer_id is not None else _ERR_AUTHEN
    if level & AUTHENTICATED and not link.authenticated:
        return _ERR_AUTHEN
    if level & AUTHORIZED:
        try:
            ok = allow()
        except Exception as e:
            print("aioble_pm: the authorizer raised %r: read refused" % e)
            ok = False
        if not ok:
            return _ERR_AUTHOR
    return None
