"""Where staged rows go while a scan runs. Nothing a sink writes is visible until `close()`.

`scan` closes its sinks when the upload is valid and aborts them otherwise, so a rejected upload never leaves
a half-written staged file behind.
"""

from __future__ import annotations

import base64
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

BLOCK_BYTES = 8 * 1024 * 1024
_IN_FLIGHT = 2  # blocks being staged at once; bounds memory to about (2 + 1) blocks


class Sink(Protocol):
    """A write-once destination for staged JSONL."""

    def write(self, data: bytes | memoryview) -> None:
        """Append bytes. `data` may be a view that is valid only during the call: copy what you keep."""

    def close(self) -> None:
        """Make everything written visible (commit)."""

    def abort(self) -> None:
        """Discard everything written; nothing becomes visible."""


class MemorySink:
    """Keeps the bytes in memory; `value` is set on close. For tests and small files."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.value: bytes | None = None
        self.aborted = False

    def write(self, data: bytes | memoryview) -> None:
        """Append (a copy of) the bytes."""
        self._parts.append(bytes(data))

    def close(self) -> None:
        """Publish the bytes as `value`."""
        self.value = b"".join(self._parts)

    def abort(self) -> None:
        """Drop the bytes."""
        self._parts.clear()
        self.aborted = True


class FileSink:
    """Writes to `path + '.partial'` and renames it into place on close (atomic on one filesystem)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self._partial, "wb")  # noqa: SIM115 - closed by close()/abort()

    def write(self, data: bytes | memoryview) -> None:
        """Append bytes."""
        self._file.write(data)

    def close(self) -> None:
        """Flush and rename into place."""
        self._file.close()
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        """Remove the partial file."""
        self._file.close()
        self._partial.unlink(missing_ok=True)


def block_id(index: int) -> str:
    """Block ids must all have the same length within a blob; base64 of a zero-padded counter."""
    return base64.b64encode(f"block-{index:08d}".encode()).decode()


class BlockBlobSink:
    """Stages a block blob block by block as rows arrive and commits the block list on close.

    Uncommitted blocks are invisible to readers and Azure garbage-collects them after a week, so an aborted
    or crashed scan leaves no blob. Blocks upload on a background thread (network I/O releases the GIL) so
    staging overlaps the scan; at most `_IN_FLIGHT` blocks are in flight.
    """

    def __init__(self, blob: BlobClient, *, block_bytes: int = BLOCK_BYTES,
                 content_type: str = "application/jsonl", metadata: dict[str, str] | None = None) -> None:
        self.blob = blob
        self._block_bytes = block_bytes
        self._content_type = content_type
        self._metadata = metadata
        self._buffer = bytearray()
        self._ids: list[str] = []
        self._pending: deque[Future[object]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=_IN_FLIGHT, thread_name_prefix="stage-block")
        self.bytes_written = 0

    def write(self, data: bytes | memoryview) -> None:
        """Append (a copy of) the bytes; a full block is staged in the background."""
        self._buffer += data
        self.bytes_written += len(data)
        if len(self._buffer) >= self._block_bytes:
            self._stage()

    def _stage(self) -> None:
        while len(self._pending) >= _IN_FLIGHT:
            self._pending.popleft().result()
        ident = block_id(len(self._ids))
        self._ids.append(ident)
        data = bytes(self._buffer)
        self._buffer.clear()
        self._pending.append(self._pool.submit(self.blob.stage_block, ident, data, length=len(data)))

    def close(self) -> None:
        """Stage the last block, wait for all, and commit: the blob appears whole or not at all."""
        from azure.storage.blob import BlobBlock, ContentSettings

        try:
            if self._buffer:
                self._stage()
            while self._pending:
                self._pending.popleft().result()
            self.blob.commit_block_list([BlobBlock(block_id=i) for i in self._ids],
                                        content_settings=ContentSettings(content_type=self._content_type),
                                        metadata=self._metadata)
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Stop staging; the uncommitted blocks are never visible."""
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._buffer.clear()
