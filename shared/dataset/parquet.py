"""Parquet uploads: the same rules and staging as JSON Lines, read row group by row group.

The row number (1-based) stands in for the line number. Rows are staged as JSON Lines, like any upload.
Parquet is read from its footer first, so pyarrow gets a seekable file over the source's ranged reads
(`HashedFile`), which also hashes the bytes in order as the reads move through the file: the content hash
needs no second pass. pyarrow is imported only here, so JSON Lines scans don't pay for it.
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Callable
from typing import Any

from shared.dataset import rules
from shared.dataset.report import Report
from shared.dataset.scanner import Lines
from shared.dataset.sinks import Sink
from shared.dataset.sources import PIECE_BYTES, Source
from shared.dataset.tally import Limits
from shared.dataset.totals import Totals

_BATCH_ROWS = 2048
_MAGIC = b"PAR1"


class HashedFile(io.RawIOBase):
    """A read-only, seekable file over a Source that hashes the source's bytes in order.

    The footer (where Parquet reading starts) is read once and kept; reads of the data that follow on from
    what is hashed are hashed as they pass, a gap (a column nobody asked for) is read and hashed when a read
    jumps past it, and `digest` hashes whatever was never read. Every byte is hashed once, in order.
    """

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source
        self.size = source.size
        self.sha = hashlib.sha256()
        self.hashed = 0
        self.position = 0
        self.tail_at, self.tail = self.size, b""
        if self.size >= 12:
            end = source.read_range(self.size - 8, 8)
            footer = struct.unpack("<I", end[:4])[0] + 8
            if end[4:] == _MAGIC and footer <= self.size - 4:
                self.tail_at = self.size - footer
                self.tail = source.read_range(self.tail_at, footer)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), max(0, self.size - self.position))
        done = 0
        while done < want:  # pyarrow expects full reads: the data part from the source, then the footer
            data = self._read(self.position + done, want - done)
            view[done:done + len(data)] = data
            done += len(data)
        self.position += done
        return done

    def _read(self, start: int, want: int) -> bytes:
        if start >= self.tail_at:
            return self.tail[start - self.tail_at:start - self.tail_at + want]
        self._hash_up_to(start)
        data = self.source.read_range(start, min(want, self.tail_at - start))
        if not data:
            raise EOFError(f"{self.source.name} ended at byte {start:,} of {self.size:,}")
        if start <= self.hashed < start + len(data):
            self.sha.update(memoryview(data)[self.hashed - start:])
            self.hashed = start + len(data)
        return data

    def _hash_up_to(self, offset: int) -> None:
        while self.hashed < offset:
            data = self.source.read_range(self.hashed, min(PIECE_BYTES, offset - self.hashed))
            self.sha.update(data)
            self.hashed += len(data)

    def digest(self) -> str:
        """sha256 of the whole source: reads and hashes what was never read."""
        self._hash_up_to(self.tail_at)
        self.sha.update(self.tail)
        self.hashed = self.size
        return self.sha.hexdigest()


def _without_nulls(row: Any) -> Any:
    """Parquet gives every message every field of the column's struct type; absent ones come back None."""
    if isinstance(row, dict) and isinstance(row.get("messages"), list):
        row["messages"] = [{k: v for k, v in m.items() if v is not None} if isinstance(m, dict) else m
                           for m in row["messages"]]
    return row


def scan_parquet(source: Source, limits: Limits | None = None, train: Sink | None = None,
                 test: Sink | None = None, progress: Callable[[int], None] | None = None) -> Report:
    """Validate, measure, hash, split and stage a Parquet upload (a `messages` column of message structs),
    one row group at a time. `progress` gets the rows read so far after each batch. The content hash is of
    the file's bytes."""
    import pyarrow.parquet as pq

    totals = Totals(limits or Limits(), train, test)
    try:
        file = HashedFile(source)
        _scan_rows(pq, file, totals, progress)
        return totals.finish(content_sha256=file.digest(), size=source.size, format="parquet")
    except BaseException:
        totals.abort()
        raise


def _scan_rows(pq: Any, file: HashedFile, totals: Totals, progress: Callable[[int], None] | None) -> None:
    try:
        # Unbuffered column reads of at most a piece: memory stays bounded by a batch, not a row group.
        parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=PIECE_BYTES)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        totals.cannot_read(rules.UNREADABLE_FILE, f"not a readable Parquet file: {exc}")
        return
    names = parquet.schema_arrow.names
    if "messages" not in names:
        totals.cannot_read(rules.MESSAGES_MISSING, f"the Parquet file has no \"messages\" column "
                           f"(columns: {', '.join(names[:5])})")
        return
    lines = Lines(totals.limits, staging=totals.staging, at_file_start=False)
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=["messages"]):
        lines.take_rows(map(_without_nulls, batch.to_pylist()))
        totals.add(lines.harvest())
        if progress is not None:
            progress(lines.line)
    totals.add(lines.finish())
