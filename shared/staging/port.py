"""The staging port: the blob operations the lifecycle needs, and nothing of any storage SDK.

Uploads are read (properties, ranged reads pinned to the version that was inspected, listings), staged
files are written block by block and become visible whole on close, rejected uploads are copied and then
deleted only if unchanged, and small files (manifests, reports) are read and written whole.

Backends: `azure_blob.AzureBlobStore` (Azure Blob Storage; Azurite locally) and `memory.InMemoryBlobStore`.
Both pass tests/contract/test_blob_store.py and raise only the errors below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from shared.dataset import Sink


class StagingError(Exception):
    """A blob operation failed; the message says which and why."""


class BlobMissing(StagingError):
    """The blob is not there (never was, or was deleted meanwhile)."""


class BlobChanged(StagingError):
    """The blob is no longer the version that was read (its ETag moved): it was overwritten meanwhile."""


@dataclass(frozen=True)
class BlobRef:
    """A blob by container and name."""

    container: str
    name: str

    @property
    def path(self) -> str:
        """`container/name`, as runs record uploads."""
        return f"{self.container}/{self.name}"


@dataclass(frozen=True)
class BlobInfo:
    """What the lifecycle reads about a blob before touching its bytes."""

    etag: str
    size: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    uploaded_at: datetime | None = None  # when this version was written (Last-Modified)


@runtime_checkable
class BlobStore(Protocol):
    """Blob primitives. Containers are created on first write; reading a missing one is BlobMissing."""

    def properties(self, blob: BlobRef) -> BlobInfo | None:
        """The blob's ETag, size and metadata; None if there is no such blob."""
        ...

    def read(self, blob: BlobRef, offset: int, length: int, *, etag: str) -> bytes:
        """Bytes [offset, offset + length) of the version `etag` (fewer at the end of the blob).

        Raises BlobChanged if the blob was overwritten since, BlobMissing if it is gone.
        """
        ...

    def names(self, container: str, prefix: str = "") -> Iterator[str]:
        """Names of the blobs in `container` starting with `prefix` (none if the container is missing)."""
        ...

    def writer(self, blob: BlobRef, content_type: str = "application/jsonl") -> Sink:
        """A sink for a new version of `blob`: nothing shows until `close()`; `abort()` leaves nothing."""
        ...

    def put(self, blob: BlobRef, data: bytes, content_type: str = "application/octet-stream",
            metadata: Mapping[str, str] | None = None) -> BlobInfo:
        """Write a small blob whole (overwriting)."""
        ...

    def copy(self, source: BlobRef, target: BlobRef, *, source_etag: str) -> BlobInfo:
        """Copy version `source_etag` of `source` to `target` and wait until it is complete.

        Raises BlobChanged (and leaves no target) if the source is no longer that version.
        """
        ...

    def delete(self, blob: BlobRef, *, etag: str | None = None) -> None:
        """Delete the blob (only version `etag` if given: BlobChanged otherwise). Missing is not an error."""
        ...

    def url(self, blob: BlobRef) -> str:
        """The URL a platform reads the blob from (staged train and test files)."""
        ...

    def ref(self, url: str) -> BlobRef:
        """The blob a URL of this store names; ValueError for a URL that is not one."""
        ...
