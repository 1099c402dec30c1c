"""Scanning a local file: the same scan an upload gets, over positional reads of the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shared.dataset.any_upload import scan_upload
from shared.dataset.report import Report
from shared.dataset.sinks import Sink
from shared.dataset.sources import FileSource
from shared.dataset.stream import Parallelism
from shared.dataset.tally import Limits


def scan_path(path: Path, limits: Limits | None = None, train: Sink | None = None, test: Sink | None = None,
              progress: Callable[[int], None] | None = None, *,
              parallel: Parallelism | None = None) -> Report:
    """Scan a local file like an upload of that name (JSON Lines, .jsonl.gz or Parquet)."""
    with FileSource(path) as source:
        return scan_upload(source, limits, train, test, parallel=parallel, progress=progress)
