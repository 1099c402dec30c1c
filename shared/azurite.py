"""Azurite, the storage emulator: its well-known development account and the connection strings to it.

The account key is public (documented by Microsoft for the emulator); it is not a secret.
"""

from __future__ import annotations

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# The emulator shorthand Core Tools and the storage SDKs' docs use for a connection string.
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"


def azurite_connection_string(host: str = "127.0.0.1", blob: int = 10000, queue: int = 10001,
                              table: int = 10002) -> str:
    """The connection string for an Azurite instance listening on the given loopback ports."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{AZURITE_ACCOUNT};"
    )


def connection_string(value: str) -> str:
    """A storage connection string as given, with `UseDevelopmentStorage=true` read as Azurite's default ports
    (the one place that shorthand is understood)."""
    value = value.strip()
    return azurite_connection_string() if value == DEVELOPMENT_STORAGE else value
