# The bond-mismatch doctor (aioble_pm/policy.py): one-sided bonds recognised from the
# stack's signatures, one BOND_MISMATCH event, the storm stopped, pm.on_mismatch policies.
import aioble_pm
from aioble_pm import SecurityError
from mptest import raises, eq, timeout
from pmsim import PM, Peer, accept, connect, disconnect, bond, gone, until


def mismatches(a):
    return a.ids(aioble_pm.BOND_MISMATCH)


async def secure_fails(a, h, reason, timeout_ms=20000):
    with raises(SecurityError) as e:
        await a.pm.secure(h, timeout_ms=timeout_ms)
    eq(e.value.reason, reason)


async def board_lost_its_bond():
    """A board (peripheral) bonded with a central, then the board's bond deleted: the
    central still holds its keys."""
    a = PM()
    phone = Peer("phone")
    h = await accept(a, phone)
    eq(await a.pm.secure(h), 0)
    await disconnect(a, h)
    a.pm.delete(0)
    return a, phone


@timeout(120)
async def test_central_with_keys_we_lost_is_reported_once_and_fails_fast():
    a, phone = await board_lost_its_bond()
    h = await accept(a, phone)
    # the central encrypts with its keys, we have none: no IRQ follows on real NimBLE,
    # so without the doctor secure() would wait for its whole timeout
    await secure_fails(a, h, SecurityError.KEY_MISSING, timeout_ms=15000)
    eq(a.ids(aioble_pm.CONN_SEC_FAILED)[-1].error.reason, SecurityError.KEY_MISSING)
    ev = mismatches(a)
    eq(len(ev), 1)
    eq((ev[0].lost, ev[0].conn, ev[0].peer_id), ("local", h, None))
    assert "pm.restore" in ev[0].advice and "Bluetooth settings" in ev[0].advice, ev[0].advice
    await disconnect(a, h)
    # the storm: the central comes back; no second event, and its link is dropped at once
    h = await accept(a, phone)
    await secure_fails(a, h, SecurityError.KEY_MISSING, timeout_ms=15000)
    await until(lambda: gone(a, h), what="the storm's link dropped")
    eq(len(mismatches(a)), 1, "one event per one-sided bond")
    eq(a.pm.peer_ids(), [])


@timeout(120)
async def test_repair_policy_lets_that_central_alone_bond_in_a_closed_window():
    a, phone = await board_lost_its_bond()
    a.pm.pairing_window(0)
    eq(a.pm.on_mismatch(aioble_pm.MISMATCH_REPAIR), aioble_pm.MISMATCH_REPORT)
    h = await accept(a, phone)
    await secure_fails(a, h, SecurityError.KEY_MISSING, timeout_ms=15000)
    await disconnect(a, h)
    phone.forget_bonds()  # the user follows the advice on the phone
    stranger = Peer("stranger")
    h = await accept(a, stranger)
    await secure_fails(a, h, SecurityError.PAIRING_CLOSED)
    await disconnect(a, h)
    h = await accept(a, phone)
    eq(await a.pm.secure(h), 0, "the re-pair window of that central")
    await disconnect(a, h)
    eq(a.pm.peer_ids(), [0])


@timeout(120)
async def test_peer_that_lost_its_keys_as_central_side_and_the_storm_waits():
    a = PM()
    b = Peer("sensor")
    await bond(a, b)
    b.forget_bonds()
    h = await connect(a, b)
    await secure_fails(a, h, SecurityError.KEY_MISSING)
    ev = mismatches(a)
    eq([(e.lost, e.peer_id) for e in ev], [("peer", 0)])
    assert "pair again" in ev[0].advice
    await secure_fails(a, h, SecurityError.KEY_MISSING)  # the app retries at once...
    await secure_fails(a, h, SecurityError.REPEATED_ATTEMPTS)  # ...and is made to wait
    eq(len(mismatches(a)), 1)
    eq(a.pm.peer_ids(), [0], "MISMATCH_REPORT keeps our bond")


@timeout(120)
async def test_repair_policy_as_central_deletes_the_stale_bond_and_pairs_again():
    a = PM()
    b = Peer("sensor")
    await bond(a, b)
    b.forget_bonds()
    seen = []
    a.pm.on_mismatch(lambda ev: seen.append(ev.lost) or aioble_pm.MISMATCH_REPAIR)
    h = await connect(a, b)
    await secure_fails(a, h, SecurityError.KEY_MISSING)
    eq(seen, ["peer"])
    eq(a.pm.peer_ids(), [], "the stale bond is gone")
    eq(await a.pm.secure(h), 0, "pairs afresh")
    eq(a.ids(aioble_pm.CONN_SEC_SUCCEEDED)[-1].procedure, aioble_pm.PROC_BONDING)


@timeout(120)
async def test_bonded_central_pairing_again_is_a_mismatch_refused_by_default():
    a = PM()
    phone = Peer("phone")
    h = await accept(a, phone)
    eq(await a.pm.secure(h), 0)
    await disconnect(a, h)
    phone.forget_bonds()  # the phone "forgot this device" and pairs again
    h = await accept(a, phone)
    await secure_fails(a, h, SecurityError.REJECTED)  # the default: refused, bond kept
    eq([(e.lost, e.peer_id) for e in mismatches(a)], [("peer", 0)])
    eq(a.pm.peer_ids(), [0])


@timeout(120)
async def test_repair_policy_allows_one_repairing_per_back_off():
    a = PM()
    a.pm.on_mismatch(aioble_pm.MISMATCH_REPAIR)
    phone = Peer("phone")
    h = await accept(a, phone)
    eq(await a.pm.secure(h), 0)
    await disconnect(a, h)
    phone.forget_bonds()
    h = await accept(a, phone)
    eq(await a.pm.secure(h), 0, "MISMATCH_REPAIR: allowed, the peer keeps its ID")
    eq([e.lost for e in mismatches(a)], ["peer"])
    await disconnect(a, h)
    phone.forget_bonds()  # at once again: a storm, no second window
    h = await accept(a, phone)
    await secure_fails(a, h, SecurityError.REJECTED)
    eq(len(mismatches(a)), 2, "reported again (the bond was whole in between)")
    eq(a.pm.peer_ids(), [0])


def test_on_mismatch_checks_its_argument():
    a = PM()
    with raises(ValueError, "policy"):
        a.pm.on_mismatch(7)
    eq(a.pm.on_mismatch(print), aioble_pm.MISMATCH_REPORT)
