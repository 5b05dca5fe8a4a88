"""CCCD persistence and Service Changed (issue 13): a bonded central's subscriptions
survive the peripheral's reboot on firmware with native/aioble_pm_cccd, and a database
change reaches it as Service Changed when it comes back; on stock firmware the same
story loses the subscription (the defect the module fixes)."""
import traces

CHR = 21  # CHR's value handle on the unix builds (after GAP 10-14 and GATT 15-18)
SC = 17  # Service Changed's value handle
MOVED = 24  # CHR's value handle with db 2 (CHR2 takes 20-22)


def test_subscriptions_survive_reboot_and_db_change_sends_service_changed(stack, cccd_firmware):
    c = stack.central(1, name="C", sessions=[
        {"subscribe": [[CHR + 1, 1], [SC + 1, 2]]},  # bond, subscribe to CHR and Service Changed
        {"expect": CHR},  # after P's reboot: no CCCD written, the notification comes
        {"expect": SC},  # after P's database changed: Service Changed
    ])
    p1 = stack.board(0, name="P", secure=True, cccd=True).wait()
    p2 = stack.board(0, name="P", secure=True, notify=True, cccd=True).wait()
    p3 = stack.board(0, name="P", secure=True, db=2, cccd=True).wait()
    out = c.wait()
    assert "P: chr handle %d" % CHR in p1 and "P: chr handle %d" % MOVED in p3, p1 + p3
    assert "C: cccd %d=1 status 0" % (CHR + 1) in out and "C: cccd %d=2 status 0" % (SC + 1) in out, out
    assert "P: secure ok peer_id=0" in p2 and "P: notified" in p2, p2
    assert "C: update %d %s" % (CHR, b"boot".hex()) in out, out
    assert "event LOCAL_DB_CHANGED" in p3, p3
    assert "C: update %d 0100ffff" % SC in out, out
    assert "event SERVICE_CHANGED_CONFIRMED peer_id=0" in p3, p3
    assert "C: end peers=[0]" in out, out
    # NimBLE reads the value for the notification from its host task, which the store
    # call's IRQ may or may not run first: the order within a boot is not compared
    traces.check(stack, "cccd_reboot_service_changed", ordered=False)


def test_stock_firmware_loses_the_subscription(stack):
    c = stack.central(1, name="C", sessions=[
        {"subscribe": [[CHR + 1, 1]]},
        {"expect": CHR},
        {"subscribe": [[CHR + 1, 1], [CHR + 1, 0]]},  # a bonded client unsubscribing
    ])
    stack.board(0, name="P", secure=True).wait()
    p2 = stack.board(0, name="P", secure=True, notify=True).wait()
    stack.board(0, name="P", secure=True).wait()
    out = c.wait()
    assert "P: notified" in p2, p2
    assert "C: update %d" % CHR not in out and "an update of handle %d: not within" % CHR in out, out
    # NimBLE returns the stock store's BLE_HS_ENOENT (5) as the CCCD write's ATT error
    assert "C: cccd %d=0 status 261" % (CHR + 1) in out, out
    traces.check(stack, "cccd_stock")
