"""The row store in process memory: the same contract as Table Storage, for tests and one-process runs.

Each write gets a fresh ETag under one lock, so concurrent compare-and-set behaves as the table's does.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

from shared.runs.port import Conflict, Row, RowExists, Where, check_row, check_where


class InMemoryRowStore:
    """Rows in a dict, keyed by (kind, key)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], Row] = {}
        self._lock = threading.Lock()
        self._versions = itertools.count(1)

    def insert(self, row: Row) -> Row:
        """Create the row; RowExists if taken."""
        check_row(row)
        with self._lock:
            if (row.kind, row.key) in self._rows:
                raise RowExists(f"{row.kind}/{row.key} exists")
            return self._put(row)

    def get(self, kind: str, key: str) -> Row | None:
        """The row, or None."""
        with self._lock:
            return self._rows.get((kind, key))

    def query(self, kind: str, where: Where | None = None) -> Iterator[Row]:
        """Rows of `kind` matching every condition, in key order (as Table Storage returns them)."""
        conditions = check_where(where)
        with self._lock:
            rows = sorted((row for (k, _), row in self._rows.items() if k == kind), key=lambda r: r.key)
        for row in rows:
            if all(row.columns.get(column) in values for column, values in conditions.items()):
                yield row

    def replace(self, row: Row) -> Row:
        """Overwrite if the stored ETag is `row.etag`; Conflict otherwise (also when the row is gone)."""
        check_row(row)
        if row.etag is None:
            raise ValueError(f"replacing {row.kind}/{row.key} needs the ETag it was read with")
        with self._lock:
            current = self._rows.get((row.kind, row.key))
            if current is None or current.etag != row.etag:
                raise Conflict(f"{row.kind}/{row.key} changed since it was read")
            return self._put(row)

    def _put(self, row: Row) -> Row:
        stored = Row(row.kind, row.key, dict(row.columns), f'W/"{next(self._versions)}"')
        self._rows[(row.kind, row.key)] = stored
        return stored
