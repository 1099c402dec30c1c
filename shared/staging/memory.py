"""The staging port in process memory: the same contract as Blob Storage, for tests and one-process runs."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

from shared.staging.port import BlobChanged, BlobInfo, BlobMissing, BlobRef

SCHEME = "memory"


@dataclass(frozen=True)
class _Blob:
    data: bytes
    etag: str
    content_type: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    written_at: datetime | None = None


class InMemoryBlobStore:
    """Blobs in a dict, keyed by (container, name); each write gets a fresh ETag (and its time on `clock`)."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))  # a test's world moves it
        self._blobs: dict[tuple[str, str], _Blob] = {}
        self._lock = threading.Lock()
        self._versions = itertools.count(1)

    def properties(self, blob: BlobRef) -> BlobInfo | None:
        """ETag, size and metadata; None if missing."""
        with self._lock:
            found = self._blobs.get((blob.container, blob.name))
        return None if found is None else BlobInfo(found.etag, len(found.data), dict(found.metadata),
                                                   found.written_at)

    def read(self, blob: BlobRef, offset: int, length: int, *, etag: str) -> bytes:
        """A range of version `etag`."""
        return self._version(blob, etag).data[offset:offset + max(length, 0)]

    def names(self, container: str, prefix: str = "") -> Iterator[str]:
        """Blob names in the container with the prefix, in name order."""
        with self._lock:
            found = sorted(n for c, n in self._blobs if c == container and n.startswith(prefix))
        yield from found

    def writer(self, blob: BlobRef, content_type: str = "application/jsonl") -> _Writer:
        """A sink committed whole on close."""
        return _Writer(self, blob, content_type)

    def put(self, blob: BlobRef, data: bytes, content_type: str = "application/octet-stream",
            metadata: Mapping[str, str] | None = None) -> BlobInfo:
        """Write the blob whole."""
        with self._lock:
            stored = _Blob(bytes(data), f'"0x{next(self._versions):X}"', content_type, dict(metadata or {}),
                           self._clock())
            self._blobs[(blob.container, blob.name)] = stored
        return BlobInfo(stored.etag, len(stored.data), dict(stored.metadata), stored.written_at)

    def copy(self, source: BlobRef, target: BlobRef, *, source_etag: str) -> BlobInfo:
        """Copy that version of the source."""
        found = self._version(source, source_etag)
        return self.put(target, found.data, found.content_type, found.metadata)

    def delete(self, blob: BlobRef, *, etag: str | None = None) -> None:
        """Delete (that version only, if given)."""
        with self._lock:
            found = self._blobs.get((blob.container, blob.name))
            if found is None:
                return
            if etag is not None and found.etag != etag:
                raise BlobChanged(f"{blob.path} changed since it was read; not deleted")
            del self._blobs[(blob.container, blob.name)]

    def url(self, blob: BlobRef) -> str:
        """`memory://container/name`."""
        return f"{SCHEME}://{blob.container}/{quote(blob.name)}"

    def ref(self, url: str) -> BlobRef:
        """The blob a `memory://` URL names."""
        parts = urlsplit(url)
        name = unquote(parts.path).lstrip("/")
        if parts.scheme != SCHEME or not parts.netloc or not name:
            raise ValueError(f"not a blob URL of the in-memory store: {url!r}")
        return BlobRef(parts.netloc, name)

    def _version(self, blob: BlobRef, etag: str) -> _Blob:
        with self._lock:
            found = self._blobs.get((blob.container, blob.name))
        if found is None:
            raise BlobMissing(f"{blob.path} does not exist")
        if found.etag != etag:
            raise BlobChanged(f"{blob.path} changed since it was read")
        return found


class _Writer:
    """Buffers a staged file; `close` publishes it in one step, `abort` drops it."""

    def __init__(self, store: InMemoryBlobStore, blob: BlobRef, content_type: str) -> None:
        self._store, self._blob, self._content_type = store, blob, content_type
        self._parts: list[bytes] = []

    def write(self, data: bytes | memoryview) -> None:
        """Append (a copy of) the bytes: a view is valid only during the call."""
        self._parts.append(bytes(data))

    def close(self) -> None:
        """Publish what was written."""
        self._store.put(self._blob, b"".join(self._parts), self._content_type)

    def abort(self) -> None:
        """Publish nothing."""
        self._parts.clear()
