"""aioble_pm: a Peer Manager for aioble (bonds on flash, peer IDs, security, privacy).

Public names are loaded on first use, so `from aioble_pm import privacy` does not pull
in the whole manager (each module costs RAM on a microcontroller).
"""

__version__ = "0.1.0"

_SECURITY = ("SecurityError", "SecParams", "pairing_method", "IO_DISPLAY_ONLY", "IO_DISPLAY_YESNO",
             "IO_KEYBOARD_ONLY", "IO_NO_INPUT_OUTPUT", "IO_KEYBOARD_DISPLAY")
_MANAGER = ("PeerManager", "Event", "EVICT_LRU", "REJECT", "SKIP_NO_ID_ADDR", "SKIP_NO_IRK",
            "BONDED_PEER_CONNECTED", "CONN_SEC_START", "CONN_SEC_SUCCEEDED", "CONN_SEC_FAILED",
            "CONN_SEC_CONFIG_REQ", "PASSKEY_DISPLAY", "PASSKEY_REQUEST", "NUMERIC_COMPARISON",
            "STORAGE_FULL", "PEER_DELETE_SUCCEEDED", "PEER_DELETE_FAILED", "PEERS_DELETE_SUCCEEDED",
            "PEER_DATA_UPDATE_SUCCEEDED", "PEER_DATA_UPDATE_FAILED", "ERROR_UNEXPECTED", "PEER_EVICTED", "CONN_REFUSED",
            "PROC_ENCRYPTION", "PROC_BONDING", "PROC_PAIRING",
            "BOND_MISMATCH", "MISMATCH_REPORT", "MISMATCH_REPAIR", "LOCAL_DB_CHANGED", "SERVICE_CHANGED_CONFIRMED")
_ACCESS = ("protect", "protect_flags", "ENCRYPTED", "AUTHENTICATED", "AUTHORIZED")


def capabilities(pm=None):
    """What this firmware (and, given one, a PeerManager's store) can do: a dict, no radio
    traffic; see aioble_pm/more.py and the README."""
    from .more import capabilities

    return capabilities(pm)


def __getattr__(name):
    if name == "PeerManager":
        from . import manager as m
    elif name in _MANAGER:  # the event and policy constants
        from . import events as m
    elif name == "PeerInfo":
        from . import peerinfo as m
    elif name in _SECURITY:
        from . import security as m
    elif name in _ACCESS:
        from . import access as m
    else:
        # MicroPython asks here before importing a submodule (`from aioble_pm import zms`)
        try:
            __import__("aioble_pm." + name)
        except ImportError as e:
            if "aioble_pm." + name not in str(e):
                raise  # the submodule exists but failed to import: show why
            raise AttributeError(name)
        return globals()[name]
    value = getattr(m, name)
    globals()[name] = value
    return value
