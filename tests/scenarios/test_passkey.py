"""Passkeys with a MicroPython central, which never sees PASSKEY_ACTION on the real
binding (only the peripheral-role callback handles it): the peripheral's answers are
what can be tested. A rejected numeric comparison fails the pairing at once (NUMCMP);
a passkey typed on the peripheral while the central can never show one stalls until
secure()'s timeout; and a central that would need a passkey fails fast (UNSUPPORTED)."""
import traces

IO_DISPLAY_ONLY, IO_DISPLAY_YESNO, IO_KEYBOARD_ONLY, IO_KEYBOARD_DISPLAY = 0, 1, 2, 4


def test_numeric_comparison_rejected_on_peripheral(stack):
    sec = dict(bond=True, mitm=True, lesc=True, io=IO_DISPLAY_YESNO)
    c = stack.central(1, name="C", sec=sec, sessions=[{"wait_ms": 5000}])
    p = stack.board(0, name="P", secure=True, sec=sec, numcmp=False).wait()
    out = c.wait()
    assert "P: event NUMERIC_COMPARISON: answer False" in p, p
    assert "P: secure failed reason=numeric comparison" in p, p
    assert "P: end peers=[]" in p and "C: end peers=[]" in out, p + out
    assert "C: link encrypted=1" not in out, out
    traces.check(stack, "numeric_comparison_rejected_on_peripheral")


def test_wrong_passkey_on_peripheral(stack):
    c = stack.central(1, name="C", sec=dict(bond=True, mitm=True, lesc=True, io=IO_DISPLAY_ONLY),
                      sessions=[{"wait_ms": 6000}])
    p = stack.board(0, name="P", secure=True, secure_timeout_ms=3000, passkey=111111,
                    sec=dict(bond=True, mitm=True, lesc=True, io=IO_KEYBOARD_ONLY)).wait()
    out = c.wait()
    assert "P: event PASSKEY_REQUEST: answer 111111" in p, p
    assert "P: secure failed" in p and "P: end peers=[]" in p, p
    assert "C: link encrypted=1" not in out and "C: end peers=[]" in out, out
    traces.check(stack, "wrong_passkey_on_peripheral")


def test_central_needing_passkey_fails_fast(stack):
    c = stack.central(1, name="C", sec=dict(bond=True, mitm=True, lesc=True, io=IO_KEYBOARD_DISPLAY),
                      sessions=[{"secure": True}])
    p = stack.board(0, name="P", sec=dict(bond=True, mitm=True, lesc=True, io=IO_DISPLAY_ONLY)).wait()
    out = c.wait()
    assert "C: secure failed reason=unsupported" in out, out
    # at once: before any SMP exchange (the central's store is never read for the
    # peripheral's key, which NimBLE does first when it pairs); its duration is in bench/
    central = stack.boots[0].trace()
    assert not [line for line in central if line.startswith("GET_SECRET type=2 index=0 key=0042")], central
    assert "P: end peers=[]" in p, p
    traces.check(stack, "central_needing_passkey_fails_fast")
