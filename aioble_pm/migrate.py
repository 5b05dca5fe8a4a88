"""One-time import of aioble's `ble_secrets.json` into the peer database (loaded only
when that file exists). Bonds beyond max_peers are not imported, never evicting one
already here: each is reported with a STORAGE_FULL event naming its address."""
import binascii
import json
import os

from . import nimble
from .events import STORAGE_FULL


def run(store, emit, path):
    """Import `path` (a list of [sec_type, base64 key, base64 value]) through the store
    adapter, then rename it to `<path>.migrated` (where any bond not imported stays).
    A file that cannot be parsed is left alone. Returns the number of secrets imported."""
    try:
        with open(path) as f:
            entries = json.load(f)
    except OSError:
        return 0
    except ValueError as e:
        print("aioble_pm: %s not imported: %r" % (path, e))
        return 0
    if not isinstance(entries, list):
        print("aioble_pm: %s not imported: not a list" % path)
        return 0
    count = 0
    skipped = []
    for entry in entries:
        try:
            sec_type, key, value = entry
            key = binascii.a2b_base64(key)
            value = binascii.a2b_base64(value)
        except (ValueError, TypeError) as e:
            print("aioble_pm: skipped an entry of %s: %r" % (path, e))
            continue
        done = store.import_secret(sec_type, key, value)
        if done:
            count += 1
        elif done is None and key not in skipped:
            skipped.append(key)
            emit(STORAGE_FULL, addr=nimble.key_addr(key))
    if skipped:
        print("aioble_pm: %d bonds of %s not imported (all peer IDs in use)" % (len(skipped), path))
    os.rename(path, path + ".migrated")
    return count
