// _aioble_pm_cccd: CCCD persistence for MicroPython's NimBLE binding (aioble_pm, issue 13).
//
// The binding answers every CCCD store call itself ("not stored"), so a bonded client's
// subscriptions die with the connection. install() wraps the three store callbacks the
// binding registers: CCCD calls (BLE_STORE_OBJ_TYPE_CCCD = 3) go to the Python secret
// store through the binding's own _IRQ_GET_SECRET / _IRQ_SET_SECRET path, with sec type 3;
// every other call goes to the binding's callbacks unchanged. Byte layout (all LE):
//   key   = peer_addr (7: type, val[6] LSB-first) || chr_val_handle (u16), 9 bytes;
//           an all-zero address means any peer, handle 0 any characteristic
//   value = flags (u16: 1 notify, 2 indicate) || value_changed (u8, 0/1), 3 bytes
//   read:   GET_SECRET(3, idx, key) -> key || value (12 bytes) of the idx-th match
//   write:  SET_SECRET(3, key, value);  delete: SET_SECRET(3, key, None)
// The binding re-installs its callbacks each time the stack starts, so install() must be
// called after every activation (aioble_pm does it when NimBLE asks for our IRK).
// changed(start, end) is NimBLE's ble_svc_gatt_changed(); sc_handle() the value handle of
// the Service Changed characteristic.
#include <string.h>
#include "py/runtime.h"
#include "py/mperrno.h"

#if MICROPY_PY_BLUETOOTH && MICROPY_BLUETOOTH_NIMBLE && MICROPY_PY_BLUETOOTH_ENABLE_PAIRING_BONDING

#include "extmod/modbluetooth.h"
#include "host/ble_hs.h"
#include "services/gatt/ble_svc_gatt.h"

#define SEC_CCCD (3)
#define KEY_LEN (9)
#define VALUE_LEN (3)

static ble_store_read_fn *binding_read;
static ble_store_write_fn *binding_write;
static ble_store_delete_fn *binding_delete;

static void pack_key(uint8_t *out, const ble_addr_t *addr, uint16_t handle) {
    out[0] = addr->type;
    memcpy(out + 1, addr->val, 6);
    out[7] = handle & 0xff;
    out[8] = handle >> 8;
}

static int cccd_read(int obj_type, const union ble_store_key *key, union ble_store_value *dst) {
    if (obj_type != BLE_STORE_OBJ_TYPE_CCCD) {
        return binding_read(obj_type, key, dst);
    }
    uint8_t k[KEY_LEN];
    pack_key(k, &key->cccd.peer_addr, key->cccd.chr_val_handle);
    const uint8_t *v;
    size_t n;
    if (!mp_bluetooth_gap_on_get_secret(SEC_CCCD, key->cccd.idx, k, KEY_LEN, &v, &n) || n != KEY_LEN + VALUE_LEN) {
        return BLE_HS_ENOENT;
    }
    struct ble_store_value_cccd *c = &dst->cccd;
    memset(c, 0, sizeof(*c));
    c->peer_addr.type = v[0];
    memcpy(c->peer_addr.val, v + 1, 6);
    c->chr_val_handle = v[7] | v[8] << 8;
    c->flags = v[9] | v[10] << 8;
    c->value_changed = v[11] & 1;
    return 0;
}

static int cccd_write(int obj_type, const union ble_store_value *val) {
    if (obj_type != BLE_STORE_OBJ_TYPE_CCCD) {
        return binding_write(obj_type, val);
    }
    const struct ble_store_value_cccd *c = &val->cccd;
    uint8_t k[KEY_LEN];
    uint8_t v[VALUE_LEN] = {c->flags & 0xff, c->flags >> 8, c->value_changed};
    pack_key(k, &c->peer_addr, c->chr_val_handle);
    return mp_bluetooth_gap_on_set_secret(SEC_CCCD, k, KEY_LEN, v, VALUE_LEN) ? 0 : BLE_HS_ESTORE_CAP;
}

static int cccd_delete(int obj_type, const union ble_store_key *key) {
    if (obj_type != BLE_STORE_OBJ_TYPE_CCCD) {
        return binding_delete(obj_type, key);
    }
    uint8_t k[KEY_LEN];
    pack_key(k, &key->cccd.peer_addr, key->cccd.chr_val_handle);
    // NimBLE deletes until "not found" (ble_store_util_delete_all): False ends it
    return mp_bluetooth_gap_on_set_secret(SEC_CCCD, k, KEY_LEN, NULL, 0) ? 0 : BLE_HS_ENOENT;
}

// install(): route CCCD store calls to Python; True if it was not installed yet.
static mp_obj_t cccd_install(void) {
    if (ble_hs_cfg.store_read_cb == cccd_read) {
        return mp_const_false;
    }
    if (ble_hs_cfg.store_read_cb == NULL) {
        mp_raise_OSError(MP_EPERM);  // the binding was built without a secret store
    }
    binding_read = ble_hs_cfg.store_read_cb;
    binding_write = ble_hs_cfg.store_write_cb;
    binding_delete = ble_hs_cfg.store_delete_cb;
    ble_hs_cfg.store_read_cb = cccd_read;
    ble_hs_cfg.store_write_cb = cccd_write;
    ble_hs_cfg.store_delete_cb = cccd_delete;
    return mp_const_true;
}
static MP_DEFINE_CONST_FUN_OBJ_0(cccd_install_obj, cccd_install);

static void need_active(void) {
    if (!mp_bluetooth_is_active()) {
        mp_raise_OSError(MP_EPERM);
    }
}

// changed(start, end): indicate Service Changed for this handle range to subscribed
// clients now, and (through the store) to bonded ones when they reconnect.
static mp_obj_t cccd_changed(mp_obj_t start_in, mp_obj_t end_in) {
    mp_int_t start = mp_obj_get_int(start_in);
    mp_int_t end = mp_obj_get_int(end_in);
    if (start < 1 || end > 0xffff || start > end) {
        mp_raise_ValueError(MP_ERROR_TEXT("need 1 <= start <= end <= 0xffff"));
    }
    need_active();
    ble_svc_gatt_changed(start, end);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(cccd_changed_obj, cccd_changed);

// sc_handle(): value handle of the Service Changed characteristic (0: none).
static mp_obj_t cccd_sc_handle(void) {
    need_active();
    uint16_t h = 0;
    if (ble_gatts_find_chr(BLE_UUID16_DECLARE(BLE_GATT_SVC_UUID16),
        BLE_UUID16_DECLARE(BLE_SVC_GATT_CHR_SERVICE_CHANGED_UUID16), NULL, &h) != 0) {
        h = 0;
    }
    return MP_OBJ_NEW_SMALL_INT(h);
}
static MP_DEFINE_CONST_FUN_OBJ_0(cccd_sc_handle_obj, cccd_sc_handle);

static const mp_rom_map_elem_t cccd_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__aioble_pm_cccd) },
    { MP_ROM_QSTR(MP_QSTR_install), MP_ROM_PTR(&cccd_install_obj) },
    { MP_ROM_QSTR(MP_QSTR_changed), MP_ROM_PTR(&cccd_changed_obj) },
    { MP_ROM_QSTR(MP_QSTR_sc_handle), MP_ROM_PTR(&cccd_sc_handle_obj) },
};
static MP_DEFINE_CONST_DICT(cccd_globals, cccd_globals_table);

const mp_obj_module_t aioble_pm_cccd_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&cccd_globals,
};

MP_REGISTER_MODULE(MP_QSTR__aioble_pm_cccd, aioble_pm_cccd_module);

#endif
