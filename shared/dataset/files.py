"""Scanning a local file: JSON Lines read in fixed-size chunks, or Parquet by its extension."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from shared.dataset.report import Report
from shared.dataset.scanner import Limits, MiB, scan
from shared.dataset.sinks import Sink

CHUNK_BYTES = 4 * MiB
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_chunks(path: Path, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file's bytes in chunks of `size` (unbuffered reads: no second copy)."""
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(size):
            yield chunk


def is_parquet(name: str) -> bool:
    """Whether an upload name means Parquet (anything else is read as JSON Lines)."""
    return name.lower().endswith(PARQUET_SUFFIXES)


def scan_path(path: Path, limits: Limits | None = None, train: Sink | None = None, test: Sink | None = None,
              progress: Callable[[int], None] | None = None) -> Report:
    """Scan a local file; Parquet by extension, JSON Lines otherwise. Same rules either way."""
    if is_parquet(path.name):
        from shared.dataset.parquet import scan_parquet

        return scan_parquet(path, limits, train, test, progress)
    return scan(read_chunks(path), limits, train, test, progress)
