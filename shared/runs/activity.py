"""Requests seen by the front door, per endpoint: the idle signal that needs no metrics pipeline.

Azure Monitor's RequestsPerMinute arrives minutes late and counts only calls that reach the endpoint; a
request through the front door is written here at once (the front throttles it to one write per model a
minute), and the sweep reads the later of the two. One row per endpoint (kind "activity") beside the runs.
"""

from __future__ import annotations

from datetime import datetime

from shared.runs.port import Conflict, Row, RowExists, RowStore

KIND = "activity"


class ActivityMarks:
    """The last request the front door saw for each endpoint."""

    def __init__(self, store: RowStore) -> None:
        self.store = store

    def get(self, endpoint: str) -> datetime | None:
        """When the front door last passed a request to the endpoint (None if never)."""
        row = self.store.get(KIND, endpoint)
        at = row.columns.get("at", "") if row is not None else ""
        return datetime.fromisoformat(at) if at else None

    def mark(self, endpoint: str, at: datetime) -> None:
        """Record a request at `at`; an earlier time never replaces a later one (writers race)."""
        for _ in range(3):
            row = self.store.get(KIND, endpoint)
            known = row.columns.get("at", "") if row is not None else ""
            if known and datetime.fromisoformat(known) >= at:
                return
            try:
                if row is None:
                    self.store.insert(Row(KIND, endpoint, {"at": at.isoformat()}))
                else:
                    self.store.replace(Row(KIND, endpoint, {"at": at.isoformat()}, row.etag))
                return
            except (RowExists, Conflict):
                continue
