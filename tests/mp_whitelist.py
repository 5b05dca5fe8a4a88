# Whitelists on the BLE simulator at the raw `bluetooth` level: building from peer IDs,
# matching identity addresses and RPAs in both privacy modes, staying current as bonds
# change, and refusing centrals that are not on the accept list.
import os
import blesim
import aioble_pm
from aioble_pm import privacy, whitelist
from mptest import raises, eq, timeout
from pmsim import PM, Peer, until, connect, accept, disconnect, bond


async def _bonded(n, rpa=()):
    """A PM (central) bonded with n peers; peers listed in rpa switch to RPAs after."""
    a = PM(max_peers=8)
    ps = [Peer("p%d" % i) for i in range(n)]
    for p in ps:
        await bond(a, p)
    for i in rpa:
        ps[i].ble.config(addr_mode=2)
        blesim.rpa_timeout(ps[i].ble, 60)
    return a, ps


def _stranger_rpa():
    return privacy.rpa(os.urandom(16))


@timeout(120)
async def test_build_shapes_and_errors():
    a, ps = await _bonded(3)
    wl = a.pm.whitelist()
    eq(wl.peer_ids, [0, 1, 2])
    eq(wl.addrs, [p.identity() for p in ps])
    eq(len(wl.irks), 3)
    eq(wl.irks[1], ps[1].identity() + (bytes(reversed(ps[1].store[(10, b"irk")])),), "identity + IRK MSB-first")
    assert "irk" not in repr(wl).lower() or "IRKs" in repr(wl)
    wl2 = a.pm.whitelist([2, 0])
    eq(wl2.peer_ids, [2, 0])
    eq(len(a.pm.whitelist(skip=aioble_pm.SKIP_NO_IRK)), 3)
    with raises(ValueError, "no peer"):
        a.pm.whitelist([0, 7])
    with raises(ValueError, "duplicates"):
        a.pm.whitelist([1, 1])
    with raises(ValueError, "limit"):
        a.pm.whitelist(limit=2)
    with raises(TypeError, "peer_ids"):
        a.pm.whitelist(3)
    with raises(ValueError, "skip"):
        a.pm.whitelist(skip=9)
    with raises(ValueError, "addr"):
        wl.match(0, b"\x01\x02")
    with raises(TypeError, "addr"):
        wl.match(0, None)
    with raises(ValueError, "addr_type"):
        wl.match(4, bytes(6))


@timeout(120)
async def test_bonded_peer_found_across_rpa_rotations_stranger_never():
    a, ps = await _bonded(3, rpa=(1,))
    wl = a.pm.whitelist()
    blesim.rpa_timeout(ps[1].ble, 1)
    seen = set()
    for _ in range(4):
        rpa = ps[1].advertise()[1]
        seen.add(rpa)
        eq(privacy.kind(1, rpa), privacy.KIND_RPA)
        eq(wl.match(1, rpa), 1)
        eq(wl.match(1, rpa), 1)  # again: from the cache
        blesim.advance(1500)
    assert len(seen) >= 3, "the peer rotated its RPA"
    for _ in range(50):
        eq(wl.match(1, _stranger_rpa()), None)
        eq(wl.match(0, os.urandom(6)), None)
        eq(wl.match(1, bytes([0xC0 | os.urandom(1)[0] & 0x3F]) + os.urandom(5)), None)


@timeout(120)
async def test_nrpa_and_invalid_addresses_never_match():
    a, ps = await _bonded(1)
    wl = a.pm.whitelist()
    ident = ps[0].identity()[1]
    nrpa = bytes([ident[0] & 0x3F]) + ident[1:]  # same bits, NRPA top bits
    eq(privacy.kind(1, nrpa), privacy.KIND_NRPA)
    eq(wl.match(1, nrpa), None)
    eq(wl.match(1, bytes([0x80]) + ident[1:]), None)  # reserved top bits
    eq(wl.match(1, b"\x40\x00\x00" + b"\x11\x22\x33"), None)  # RPA with an all-zero prand


@timeout(120)
async def test_identity_address_in_both_privacy_modes():
    a, ps = await _bonded(2)
    addr_type, addr = ps[0].identity()
    net = a.pm.whitelist()
    eq(net.match(addr_type, addr), None, "network privacy: a peer with an IRK only by RPA")
    eq(net.match(addr_type, addr, resolved=True), 0, "an identity the stack resolved matches")
    eq(net.match(addr_type + 2, addr), 0, "HCI type 2/3: an identity the controller resolved")
    eq(a.pm.resolve(addr_type + 2, addr), 0)
    dev = a.pm.whitelist(device_privacy=True)
    eq(dev.match(addr_type, addr), 0)
    some = a.pm.whitelist(device_privacy=[1])
    eq(some.match(*ps[0].identity()), None)
    eq(some.match(*ps[1].identity()), 1)
    eq(net.addrs, [p.identity() for p in ps], "addrs lists identities either way")


@timeout(120)
async def test_whitelist_follows_bond_changes():
    a, ps = await _bonded(3)
    every = a.pm.whitelist(device_privacy=True)
    chosen = a.pm.whitelist([0, 2], device_privacy=True)
    a.pm.delete(2)
    eq(every.peer_ids, [0, 1])
    eq(chosen.peer_ids, [0], "a deleted peer drops out of an explicit list")
    eq(chosen.match(*ps[2].identity()), None)
    newcomer = Peer("new")
    h = await connect(a, newcomer)
    eq(await a.pm.secure(h), 2)
    eq(every.match(*newcomer.identity()), 2, "a list of all bonded peers takes in new ones")
    eq(chosen.match(*newcomer.identity()), None)


@timeout(120)
async def test_accept_list_refuses_other_centrals():
    a = PM()
    friend = Peer("friend")
    h = await accept(a, friend)
    eq(await a.pm.secure(h), 0)
    await disconnect(a, h)
    a.pm.accept(a.pm.whitelist())
    stranger = Peer("stranger")
    a.ble.gap_advertise(20000, b"\x02\x01\x06")
    stranger.ble.gap_connect(*blesim.ota_addr(a.ble))
    await until(lambda: a.ids(aioble_pm.CONN_REFUSED), what="CONN_REFUSED")
    ev = a.ids(aioble_pm.CONN_REFUSED)[0]
    eq(ev.addr, stranger.identity())
    await until(lambda: stranger.events(8), what="the stranger's disconnect")
    eq(a.pm.connected(ev.conn), False, "a refused central never gets a link")
    friend.ble.config(addr_mode=2)  # the friend comes back over an RPA
    h = await accept(a, friend)
    await until(lambda: a.pm.peer_id(h) == 0, what="friend admitted")
    eq(len(a.ids(aioble_pm.CONN_REFUSED)), 1)
    with raises(TypeError, "Whitelist"):
        a.pm.accept([0])


def test_find_viper_matches_reference():
    from whitelist_ref import find_ref

    table = bytearray(os.urandom(8 * 30))
    for i in range(30):
        table[i * 8] &= 1
    queries = [(table[i * 8], bytes(table[i * 8 + 1 : i * 8 + 7])) for i in range(30)]
    queries += [(os.urandom(1)[0] & 1, os.urandom(6)) for _ in range(100)]
    queries.append((1, b"\xff" * 6))
    for t, addr in queries:
        for resolved in (0, 1):
            eq(whitelist._find(table, 30, t, addr, resolved), find_ref(table, 30, t, addr, resolved))
