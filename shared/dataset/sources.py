"""Where an upload's bytes come from: anything with a name, a size and ranged reads.

    class Source(Protocol): name: str; size: int; def read_range(offset, length) -> bytes

A local file is the one here; a blob is read through the staging port (`shared.staging.BlobReader`, ranged
reads pinned to the version first seen), which serves the same protocol on every backend.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from shared.dataset.tally import MiB

PIECE_BYTES = 2 * MiB  # one read, and about one range of a parallel scan (2 MiB beat 1, 4 and 8 in the bench)
READ_AHEAD = 2  # pieces being read while the scan works on the current one
BUFFER_BYTES = MiB // 4  # a local file is read into one reused buffer this big (it stays in the CPU's cache)


class SourceChanged(OSError):
    """The upload changed (or shrank) while it was being read."""

    @classmethod
    def short(cls, name: str, got: int, expected: int) -> SourceChanged:
        """A read that came back short of the size the upload had when it was opened."""
        return cls(f"{name} changed while it was read ({got:,} bytes where {expected:,} were expected)")


class Source(Protocol):
    """An upload's bytes by range. `name` decides the format (.jsonl, .jsonl.gz, .parquet)."""

    @property
    def name(self) -> str:
        """The upload's name (a file or blob name)."""

    @property
    def size(self) -> int:
        """Its length in bytes."""

    def read_range(self, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (fewer only at the end)."""


class FileSource:
    """A local file, read by position (safe from several threads at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.size = os.fstat(self._file.fileno()).st_size
        self._lock = threading.Lock()

    def read_range(self, offset: int, length: int) -> bytes:
        """`length` bytes from `offset`."""
        if hasattr(os, "pread"):
            return os.pread(self._file.fileno(), length, offset)
        with self._lock:  # Windows has no pread
            self._file.seek(offset)
            return self._file.read(length) or b""

    def read_into(self, offset: int, buffer: memoryview) -> int:
        """Fill `buffer` from `offset`; the bytes read, fewer only at the end of the file."""
        done, fd = 0, self._file.fileno()
        while done < len(buffer):
            if hasattr(os, "preadv"):
                got = os.preadv(fd, [buffer[done:]], offset + done)
            else:
                with self._lock:  # Windows has no preadv
                    self._file.seek(offset + done)
                    got = self._file.readinto(buffer[done:]) or 0
            if not got:
                break
            done += got
        return done

    def fill(self, buffer: bytearray, offset: int, end: int) -> Iterator[int]:
        """Read bytes offset..end into `buffer`, one buffer at a time, yielding how many each read put there
        (the next read overwrites them). One reused buffer stays in the CPU's cache and needs no fresh pages,
        where a new bytes object per read costs more than the read itself."""
        view = memoryview(buffer)
        while offset < end:
            want = min(len(buffer), end - offset)
            got = self.read_into(offset, view[:want])
            if got != want:
                raise SourceChanged.short(self.name, offset + got, end)
            yield got
            offset += got

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_pieces(source: Source, piece: int = PIECE_BYTES, ahead: int = READ_AHEAD) -> Iterator[bytes]:
    """The source's bytes in order, `piece` at a time, with the next `ahead` pieces already being read."""
    size = source.size
    offsets = iter(range(0, size, piece))
    with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="read-range") as pool:
        pending: deque[tuple[int, Future[bytes]]] = deque()

        def read_next() -> None:
            offset = next(offsets, None)
            if offset is not None:
                length = min(piece, size - offset)
                pending.append((length, pool.submit(source.read_range, offset, length)))

        for _ in range(ahead):
            read_next()
        try:
            while pending:
                expected, future = pending.popleft()
                data = future.result()
                if len(data) != expected:
                    raise SourceChanged.short(source.name, len(data), expected)
                read_next()
                yield data
        finally:
            for _, future in pending:
                future.cancel()
