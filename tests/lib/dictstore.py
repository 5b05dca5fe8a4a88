# A secret store like aioble's for scripted test peers: a dict {(sec_type, key): value}
# answering _IRQ_GET_SECRET / _IRQ_SET_SECRET the way aioble's security.py does (FACTS §5.1),
# except that iteration follows sorted keys so runs are repeatable.


def answer(store, ev, data, refuse=False):
    """The IRQ's answer for events 29/30 (refuse: every write fails), else None."""
    if ev == 29:
        t, i, k = data
        if k is None:
            vals = [v for (tt, _), v in sorted(store.items()) if tt == t]
            return vals[i] if i < len(vals) else None
        return store.get((t, bytes(k)))
    if ev == 30:
        t, k, v = data
        if refuse and v is not None:
            return False
        if v is None:
            return store.pop((t, bytes(k)), None) is not None
        store[(t, bytes(k))] = bytes(v)
        return True
    return None
