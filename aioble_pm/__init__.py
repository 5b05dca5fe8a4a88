"""aioble_pm: a Peer Manager for aioble (bonds on flash, peer IDs, security, privacy)."""

__version__ = "0.1.0"
