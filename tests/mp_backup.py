# Bond backup and restore (pm.export / pm.restore, aioble_pm/backup.py, docs/EXPORT.md)
# and the AES modes under them (aioble_pm/cipher.py), on the BLE simulator.
import blesim
import aioble_pm
from aioble_pm import cipher, flash
from mptest import raises, eq, timeout
from pmsim import PM, Peer, accept, disconnect, bond, FLASH_SIZE

KEY = bytes(range(16))
H = bytes.fromhex

# RFC 4493 section 4 (AES-CMAC), NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt)
K = H("2b7e151628aed2a6abf7158809cf4f3c")
M = H("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411"
      "e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")


def test_cmac_rfc4493_and_ctr_sp800_38a_vectors():
    eq(cipher.subkeys(K), (H("fbeed618357133667c85e08f7236a8de"), H("f7ddac306ae266ccf90bc11ee46d513b")))
    for n, tag in ((0, "bb1d6929e95937287fa37d129b756746"), (16, "070a16b46b4d4144f79bdd9dd04a287c"),
                   (40, "dfa66747de9ae63030ca32611497c827"), (64, "51f0bebf7e3b9d92fc49741779363cfe")):
        eq(cipher.cmac(K, M[:n]).hex(), tag, "CMAC of %d bytes" % n)
    ct = H("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
           "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee")
    ctr0 = H("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    eq(cipher.ctr(K, ctr0, M), ct)
    eq(cipher.ctr(K, ctr0, ct[:37]), M[:37], "a partial last block")
    assert cipher.equal(b"ab", b"ab") and not cipher.equal(b"ab", b"ac") and not cipher.equal(b"a", b"ab")


async def bonded_board(n=1, **kw):
    """A board (PM, peripheral) with n phones bonded; returns (board, phones)."""
    a = PM(**kw)
    phones = []
    for i in range(n):
        p = Peer("phone%d" % i)
        h = await accept(a, p)
        eq(await a.pm.secure(h), i)
        await disconnect(a, h)
        phones.append(p)
    return a, phones


def reflash(board, **kw):
    """The board's firmware flashed again: a new (erased) bonds partition, the stack
    restarted; nothing attached yet. Returns (PeerManager, flash)."""
    blesim.reboot(board.ble)
    blesim.pump()
    fl = flash.RamFlash(FLASH_SIZE, 4096)
    return aioble_pm.PeerManager(fl, **kw), fl


@timeout(120)
async def test_export_holds_every_bond_and_its_size_is_as_documented():
    a, phones = await bonded_board(2)
    a.pm.set_app_data(1, b"owner")
    x = a.pm.export(key=KEY)
    eq(x[0:4], b"PMBK")
    eq(x[4], 1, "version")
    # docs/EXPORT.md: 50 bytes + 184 per bond of 80-byte NimBLE values + app data
    eq(len(x), 50 + 2 * 184 + 5)
    y = a.pm.export(key=KEY)
    assert x[8:16] != y[8:16] and x[16:] != y[16:], "a fresh nonce per export"
    for secret in (a.ble.own_irk(),):
        assert secret not in x, "our IRK is not in the clear"


@timeout(120)
async def test_restore_onto_a_reflashed_board_reencrypts_without_pairing():
    a, (phone,) = await bonded_board(1)
    a.pm.set_app_data(0, b"cfg")
    irk = a.ble.own_irk()
    x = a.pm.export(key=KEY)
    phone_store = dict(phone.store)

    pm, fl = reflash(a)
    eq(pm.peer_ids(), [], "a reflashed board has no bonds")
    eq(pm.restore(x, key=KEY), [0])
    b = PM(fl=fl, ble=a.ble)  # boots on the restored store: attach, then active(True)
    eq(b.ble.own_irk(), irk, "our IRK came back, so our RPAs resolve for the phone")
    eq(b.pm.app_data(0), b"cfg")
    h = await accept(b, phone)
    eq(b.pm.peer_id(h), 0, "the phone is recognised as it connects")
    eq(await b.pm.secure(h), 0)
    eq(b.ids(aioble_pm.CONN_SEC_SUCCEEDED)[-1].procedure, aioble_pm.PROC_ENCRYPTION)
    eq(phone.store, phone_store, "the phone stored no new keys: no pairing")
    await disconnect(b, h)


@timeout(120)
async def test_without_restore_the_reflashed_board_cannot_reencrypt():
    # the control for the test above: the same steps without restore() fail
    a, (phone,) = await bonded_board(1)
    pm, fl = reflash(a)
    b = PM(fl=fl, ble=a.ble)
    h = await accept(b, phone)
    eq(b.pm.peer_id(h), None)
    try:
        await b.pm.secure(h, timeout_ms=3000)
        ok = b.ids(aioble_pm.CONN_SEC_SUCCEEDED)[-1].procedure == aioble_pm.PROC_ENCRYPTION
    except aioble_pm.SecurityError:
        ok = False
    assert not ok, "no re-encryption without the keys"


@timeout(120)
async def test_bad_data_or_key_raises_and_changes_nothing():
    a, _ = await bonded_board(1)
    x = a.pm.export(key=KEY)
    c, _ = await bonded_board(1)  # a board with a bond of its own
    c.pm.set_app_data(0, b"mine")
    image = bytes(c.flash.image())
    before = c.pm.peer(0).addr

    def tampered(i):
        y = bytearray(x)
        y[i] ^= 1
        return bytes(y)

    cases = (
        (x, bytes(15) + b"\x01", "authentication failed"),  # wrong key
        (x[:-1], KEY, "authentication failed"),  # truncated
        (x[:40], KEY, "authentication failed"),
        (x[:20], KEY, "truncated"),
        (tampered(30), KEY, "authentication failed"),  # ciphertext
        (tampered(len(x) - 1), KEY, "authentication failed"),  # tag
        (tampered(9), KEY, "authentication failed"),  # nonce
        (tampered(0), KEY, "magic"),
        (tampered(4), KEY, "version"),
        (x + b"\x00", KEY, "authentication failed"),
    )
    for data, key, what in cases:
        with raises(ValueError, what):
            c.pm.restore(data, key=key)
        eq(bytes(c.flash.image()), image, "nothing written (%s)" % what)
    eq(c.pm.peer(0).addr, before)
    eq(c.pm.app_data(0), b"mine")
    with raises(TypeError, "key"):
        c.pm.restore(x, key="0123456789abcdef")
    with raises(ValueError, "key"):
        c.pm.export(key=bytes(15))
    with raises(TypeError, "data"):
        c.pm.restore("text", key=KEY)
    eq(bytes(c.flash.image()), image)


@timeout(120)
async def test_restore_that_does_not_fit_changes_nothing():
    a, _ = await bonded_board(3)
    a.pm.set_app_data(2, bytes(60))
    x = a.pm.export(key=KEY)
    small = PM(max_peers=2)
    image = bytes(small.flash.image())
    with raises(ValueError, "max_peers=2"):
        small.pm.restore(x, key=KEY)
    eq(bytes(small.flash.image()), image)
    tight = PM(app_data_max=16)
    image = bytes(tight.flash.image())
    with raises(ValueError, "app_data_max=16"):
        tight.pm.restore(x, key=KEY)
    eq(bytes(tight.flash.image()), image)
    tiny = PM(fl=flash.RamFlash(2 * 256, 256))  # room for one bond at most
    image = bytes(tiny.flash.image())
    with raises(ValueError, "do not fit"):
        tiny.pm.restore(x, key=KEY)
    eq(bytes(tiny.flash.image()), image)


@timeout(120)
async def test_restore_replaces_the_bonds_and_keeps_ranks_app_data_pins():
    a, phones = await bonded_board(3)
    a.pm.rank_highest(0)
    a.pm.set_app_data(2, b"two")
    a.pm.pin(1, True)
    ranks = [a.pm.peer(p).rank for p in (0, 1, 2)]
    ids = [a.pm.peer(p).addr for p in (0, 1, 2)]
    x = a.pm.export(key=KEY)
    c, (other,) = await bonded_board(1)
    h = await accept(c, other)
    with raises(ValueError, "connection"):
        c.pm.restore(x, key=KEY)
    await disconnect(c, h)
    eq(c.pm.restore(x, key=KEY), [0, 1, 2])
    eq([c.pm.peer(p).addr for p in (0, 1, 2)], ids, "the other board's bond is replaced")
    eq([c.pm.peer(p).rank for p in (0, 1, 2)], ranks)
    eq(c.pm.app_data(2), b"two")
    eq([c.pm.pinned(p) for p in (0, 1, 2)], [False, True, False])
    eq(c.pm.resolve(*phones[2].identity()), 2)
    d = c.reboot()  # and all of it is on flash
    eq([d.pm.peer(p).rank for p in (0, 1, 2)], ranks)
    eq([d.pm.pinned(p) for p in (0, 1, 2)], [False, True, False])
    eq(d.pm.app_data(2), b"two")
    eq(d.pm.restore(d.pm.export(key=KEY), key=KEY), [0, 1, 2], "an export restores onto its own board")


def test_capabilities_without_and_with_a_peer_manager():
    caps = aioble_pm.capabilities()
    eq(caps["passkey_as_central"], False)
    eq(caps["cccd"], False, "no native CCCD module on the unix port")
    eq(caps["cryptolib"], True)
    eq(caps["code"], "py", "the tests import the repository's sources (ROMFS, .mpy: test_romfs.py)")
    assert caps["binding"] in ("nimble", "unknown"), caps
    assert "max_peers" not in caps
    a = PM(max_peers=5)  # attached and active: NimBLE stored our IRK
    caps = a.pm.capabilities()
    eq(caps["binding"], "nimble")
    eq((caps["sector_size"], caps["sector_count"], caps["max_peers"], caps["peers"]), (4096, 8, 5, 0))
    free = caps["free_bytes"]
    assert 0 < free <= 7 * 4096, free
    eq(aioble_pm.capabilities(a.pm), caps)
    with raises(AttributeError, "no_such_method"):
        a.pm.no_such_method  # (the optional API is found by name; nothing else is)
    import sys

    assert "aioble_pm.backup" not in sys.modules, "backup.py loads only for export/restore"


def test_capabilities_sees_a_cccd_module_when_importable():
    import sys
    import os

    os.mkdir("fake")
    with open("fake/_aioble_pm_cccd.py", "w") as f:
        f.write("")
    sys.path.insert(0, "fake")
    eq(aioble_pm.capabilities()["cccd"], True)


@timeout(120)
async def test_capabilities_free_space_shrinks_with_a_bond_and_show_prints_it():
    a = PM()
    free = a.pm.capabilities()["free_bytes"]
    a2, _ = await bonded_board(1)
    caps = a2.pm.capabilities()
    eq(caps["peers"], 1)
    assert caps["free_bytes"] < free
    eq(caps["nimble_order"], "upstream")
    a2.pm.show()  # (the peer table, then one capability a line; prints nothing secret)
