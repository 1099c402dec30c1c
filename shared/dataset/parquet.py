"""Parquet uploads: the same rules and staging as JSON Lines, read as record batches.

The row number (1-based) stands in for the line number. Rows are staged as JSON Lines, like any upload.
pyarrow is imported only here, so JSON Lines scans don't pay for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.dataset import rules
from shared.dataset.report import Report
from shared.dataset.scanner import Limits, _Scan
from shared.dataset.sinks import Sink

_BATCH_ROWS = 2048


def _without_nulls(row: Any) -> Any:
    """Parquet gives every message every field of the column's struct type; absent ones come back None."""
    if isinstance(row, dict) and isinstance(row.get("messages"), list):
        row["messages"] = [{k: v for k, v in m.items() if v is not None} if isinstance(m, dict) else m
                           for m in row["messages"]]
    return row


def scan_parquet(path: Path, limits: Limits | None = None, train: Sink | None = None,
                 test: Sink | None = None, progress: Callable[[int], None] | None = None) -> Report:
    """Validate, measure, hash, split and stage a Parquet upload (a `messages` column of message structs).

    `progress` gets the rows read so far after each batch. The content hash is of the file's bytes.
    """
    import pyarrow.parquet as pq

    state = _Scan(limits or Limits(), train, test)
    try:
        with open(path, "rb") as raw:
            state.sha = hashlib.file_digest(raw, "sha256")  # type: ignore[assignment]
        state.bytes = path.stat().st_size
        try:
            source = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            state.error(None, rules.UNREADABLE_FILE, f"not a readable Parquet file: {exc}")
            return state.finish("parquet")
        if "messages" not in source.schema_arrow.names:
            names = ", ".join(source.schema_arrow.names[:5])
            state.error(None, rules.MESSAGES_MISSING, f"the Parquet file has no \"messages\" column "
                        f"(columns: {names})")
            return state.finish("parquet")
        for batch in source.iter_batches(batch_size=_BATCH_ROWS, columns=["messages"]):
            state.rows_of(map(_without_nulls, batch.to_pylist()), parse=False)
            state.drain()
            if progress is not None:
                progress(state.line)
        return state.finish("parquet")
    except BaseException:
        state.abort()
        raise
