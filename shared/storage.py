"""Clients for the storage account (Azurite locally): blobs, the ledger table, the local event queue.

One place decides between connection-string and identity-based access, so no other module does.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import Any
from urllib.parse import unquote, urlparse

from azure.core.pipeline.policies import RetryPolicy
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.settings import StorageSettings

# Transient storage errors (429, 5xx, timeouts) are retried by the SDKs' own exponential retry policy.
_RETRY: dict[str, Any] = {"retry_total": 5, "retry_backoff_factor": 0.5, "retry_backoff_max": 8}


@cache
def _credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def blob_service(storage: StorageSettings, **options: Any) -> BlobServiceClient:
    """The blob service client for the configured account; `options` (e.g. retry_total, read_timeout)
    override the default retry policy's."""
    settings = {**_RETRY, **options}
    if storage.connection_string:
        return BlobServiceClient.from_connection_string(storage.connection_string, **settings)
    assert storage.blob_url, "StorageSettings needs a connection string or a blob service URI"
    return BlobServiceClient(storage.blob_url, credential=_credential(), **settings)


def table_service(storage: StorageSettings) -> TableServiceClient:
    """The table service client (the ledger)."""
    if storage.connection_string:
        return TableServiceClient.from_connection_string(
            storage.connection_string, retry_policy=RetryPolicy(**_RETRY))
    assert storage.table_url, "identity-based storage needs AUTOPILOT_STORAGE__tableServiceUri"
    return TableServiceClient(storage.table_url, credential=_credential(),  # type: ignore[arg-type]
                              retry_policy=RetryPolicy(**_RETRY))


def queue_client(storage: StorageSettings, queue: str, *, base64: bool = False) -> QueueClient:
    """A queue client (the step queue; the local platform's job-event outbox).

    `base64`: message text is base64-encoded on the wire, as the Functions queue trigger expects by default.
    """
    codec: dict[str, Any] = {"message_encode_policy": TextBase64EncodePolicy(),
                             "message_decode_policy": TextBase64DecodePolicy()} if base64 else {}
    if storage.connection_string:
        return QueueClient.from_connection_string(storage.connection_string, queue, **codec, **_RETRY)
    assert storage.queue_url, "identity-based storage needs AUTOPILOT_STORAGE__queueServiceUri"
    return QueueClient(storage.queue_url, queue, credential=_credential(), **codec, **_RETRY)


def split_blob_url(url: str) -> tuple[str, str]:
    """(container, blob name) of a blob URL: Azure's `account.blob...` or Azurite's path-style URLs."""
    parsed = urlparse(url)
    path = unquote(parsed.path).lstrip("/")
    # Path-style endpoints (Azurite on an IP or localhost) put the account name first: /account/container/name
    if _path_style(parsed.hostname or ""):
        path = path.split("/", 1)[1] if "/" in path else ""
    parts = path.split("/", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ValueError(f"not a blob URL: {url!r}")
    return parts[0], parts[1]


def _path_style(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def blob_from_url(storage: StorageSettings, url: str) -> BlobClient:
    """A client for the blob at `url`, authenticated the way the app's storage is."""
    container, name = split_blob_url(url)
    return blob_service(storage).get_blob_client(container, name)
