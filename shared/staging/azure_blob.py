"""The staging port on Azure Blob Storage (Azurite locally).

Transient failures are retried by the SDK's own retry policy (shared.storage); what still fails is translated
here into the port's errors, so no `azure.core` exception reaches the lifecycle.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobServiceClient, ContentSettings

from shared.dataset import BlockBlobSink, Sink
from shared.staging.port import BlobChanged, BlobInfo, BlobMissing, BlobRef, StagingError
from shared.storage import split_blob_url

COPY_TIMEOUT_S = 600.0
_POLL_S = 0.5


class AzureBlobStore:
    """Blobs of one storage account."""

    def __init__(self, service: BlobServiceClient, *, copy_timeout_s: float = COPY_TIMEOUT_S) -> None:
        self.service = service
        self.copy_timeout_s = copy_timeout_s
        self._containers: set[str] = set()
        self._lock = threading.Lock()

    def properties(self, blob: BlobRef) -> BlobInfo | None:
        """ETag, size and metadata; None if missing."""
        try:
            props = self._client(blob).get_blob_properties()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise _translated(exc, f"read the properties of {blob.path}") from exc
        return BlobInfo(str(props.etag), int(props.size), dict(props.metadata or {}), props.last_modified)

    def read(self, blob: BlobRef, offset: int, length: int, *, etag: str) -> bytes:
        """A range of version `etag` (If-Match on the request)."""
        try:
            return self._client(blob).download_blob(offset=offset, length=length, etag=etag,
                                                    match_condition=MatchConditions.IfNotModified).readall()
        except AzureError as exc:
            raise _translated(exc, f"read {blob.path}") from exc

    def names(self, container: str, prefix: str = "") -> Iterator[str]:
        """Blob names with the prefix, as the service lists them (in name order)."""
        listing = self.service.get_container_client(container).list_blobs(name_starts_with=prefix or None)
        try:
            for item in listing:
                yield str(item.name)
        except ResourceNotFoundError:
            return
        except AzureError as exc:
            raise _translated(exc, f"list {container}/{prefix}") from exc

    def writer(self, blob: BlobRef, content_type: str = "application/jsonl") -> Sink:
        """Blocks staged as written, committed on close (BlockBlobSink), failures translated."""
        self._ensure_container(blob.container)
        return _TranslatedSink(BlockBlobSink(self._client(blob), content_type=content_type), blob)

    def put(self, blob: BlobRef, data: bytes, content_type: str = "application/octet-stream",
            metadata: Mapping[str, str] | None = None) -> BlobInfo:
        """One upload of the whole blob, overwriting."""
        self._ensure_container(blob.container)
        try:
            result = self._client(blob).upload_blob(
                data, overwrite=True, metadata=dict(metadata) if metadata else None,
                content_settings=ContentSettings(content_type=content_type))
        except AzureError as exc:
            raise _translated(exc, f"write {blob.path}") from exc
        return BlobInfo(str(result.get("etag")), len(data), dict(metadata or {}), result.get("last_modified"))

    def copy(self, source: BlobRef, target: BlobRef, *, source_etag: str) -> BlobInfo:
        """A server-side copy of exactly that source version, awaited; a copy that fails leaves no target."""
        self._ensure_container(target.container)
        client = self._client(target)
        try:
            client.start_copy_from_url(self._client(source).url, source_etag=source_etag,
                                       source_match_condition=MatchConditions.IfNotModified)
            self._await_copy(client, target)
            props = client.get_blob_properties()
        except AzureError as exc:
            raise _translated(exc, f"copy {source.path} to {target.path}") from exc
        return BlobInfo(str(props.etag), int(props.size), dict(props.metadata or {}), props.last_modified)

    def delete(self, blob: BlobRef, *, etag: str | None = None) -> None:
        """Delete, only that version if `etag` is given; missing is fine."""
        try:
            if etag is None:
                self._client(blob).delete_blob()
            else:
                self._client(blob).delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
        except ResourceNotFoundError:
            return
        except AzureError as exc:
            raise _translated(exc, f"delete {blob.path}") from exc

    def url(self, blob: BlobRef) -> str:
        """The blob's URL in this account."""
        return str(self._client(blob).url)

    def ref(self, url: str) -> BlobRef:
        """The blob a URL names (Azure's virtual-host or Azurite's path-style URLs)."""
        container, name = split_blob_url(url)
        return BlobRef(container, name)

    def _client(self, blob: BlobRef) -> BlobClient:
        return self.service.get_blob_client(blob.container, blob.name)

    def _ensure_container(self, container: str) -> None:
        with self._lock:
            if container in self._containers:
                return
        try:
            with contextlib.suppress(ResourceExistsError):  # concurrent writers race to create it
                self.service.get_container_client(container).create_container()
        except AzureError as exc:
            raise _translated(exc, f"create container {container}") from exc
        with self._lock:
            self._containers.add(container)

    def _await_copy(self, client: BlobClient, target: BlobRef) -> None:
        deadline = time.monotonic() + self.copy_timeout_s
        while True:
            copy = client.get_blob_properties().copy
            if copy.status == "success":
                return
            if copy.status in ("failed", "aborted"):
                with contextlib.suppress(AzureError):
                    client.delete_blob()
                raise StagingError(f"copying to {target.path} {copy.status}: "
                                   f"{copy.status_description or 'no reason given'}")
            if time.monotonic() > deadline:
                with contextlib.suppress(AzureError):
                    client.abort_copy(copy.id or "")
                    client.delete_blob()
                raise StagingError(f"copying to {target.path} did not finish within "
                                   f"{self.copy_timeout_s:.0f}s")
            time.sleep(_POLL_S)


class _TranslatedSink:
    """A BlockBlobSink whose storage failures surface as the port's errors."""

    def __init__(self, sink: BlockBlobSink, blob: BlobRef) -> None:
        self._sink, self._blob = sink, blob

    def write(self, data: bytes | memoryview) -> None:
        """Append bytes (a full block is staged in the background)."""
        try:
            self._sink.write(data)
        except AzureError as exc:
            raise _translated(exc, f"stage {self._blob.path}") from exc

    def close(self) -> None:
        """Commit the staged blocks."""
        try:
            self._sink.close()
        except AzureError as exc:
            raise _translated(exc, f"commit {self._blob.path}") from exc

    def abort(self) -> None:
        """Discard the staged blocks."""
        self._sink.abort()


def _translated(exc: AzureError, doing: str) -> StagingError:
    """A storage failure as the port's error, with the service's reason and no request details."""
    status = getattr(exc, "status_code", None)
    reason = str(getattr(exc, "reason", "") or "") or type(exc).__name__
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return BlobMissing(f"could not {doing}: not found")
    if isinstance(exc, ResourceModifiedError) or status == 412:
        return BlobChanged(f"could not {doing}: the blob changed since it was read")
    if isinstance(exc, HttpResponseError) and status is not None:
        return StagingError(f"blob storage refused to {doing}: {getattr(exc, 'error_code', None) or status} "
                            f"{reason}")
    return StagingError(f"blob storage: could not {doing} ({reason}); the storage account is unreachable "
                        "or busy, try again later")
