"""Reading an upload through the staging port: one version of one blob, by ranges or as a stream.

    reader = open_blob(store, BlobRef("incoming", "chats.jsonl"))
    reader.size, reader.read_range(0, 1024), reader.chunks()

Every read is pinned to the version inspected when the reader was opened, so an upload overwritten mid-scan
fails with BlobChanged instead of mixing two versions.
"""

from __future__ import annotations

from collections.abc import Iterator

from shared.staging.port import BlobMissing, BlobRef, BlobStore

CHUNK_BYTES = 4 * 1024 * 1024


class BlobReader:
    """Size and ranged reads of one blob version (what a parallel scan splits by byte ranges): a
    `shared.dataset.Source`, so `scan_upload` reads an upload through whichever backend holds it."""

    def __init__(self, store: BlobStore, blob: BlobRef, etag: str, size: int) -> None:
        self.store = store
        self.blob = blob
        self.etag = etag
        self.size = size

    @property
    def name(self) -> str:
        """The blob's name: its ending says the upload's format (.jsonl, .jsonl.gz, .parquet)."""
        return self.blob.name

    def read_range(self, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length), fewer at the end; nothing past the end."""
        if length <= 0 or offset >= self.size:
            return b""
        return self.store.read(self.blob, offset, min(length, self.size - offset), etag=self.etag)

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The whole blob, in order, `chunk_bytes` at a time."""
        for offset in range(0, self.size, chunk_bytes):
            yield self.read_range(offset, chunk_bytes)

    def lines(self) -> Iterator[bytes]:
        """Its non-blank lines, streamed: for reading the head of a large file."""
        tail = b""
        for chunk in self.chunks():
            *lines, tail = (tail + chunk).split(b"\n")
            yield from (line for line in lines if line.strip())
        if tail.strip():
            yield tail


def open_blob(store: BlobStore, blob: BlobRef) -> BlobReader:
    """A reader of the blob's current version; BlobMissing if there is none."""
    info = store.properties(blob)
    if info is None:
        raise BlobMissing(f"{blob.path} does not exist")
    return BlobReader(store, blob, info.etag, info.size)


def read_all(store: BlobStore, blob: BlobRef) -> bytes:
    """A small blob's bytes (a manifest); BlobMissing if there is none."""
    reader = open_blob(store, blob)
    return b"".join(reader.chunks())
