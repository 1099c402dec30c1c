"""The store port: the four storage primitives the ledger's rules are written over.

A row is a kind (a run today; an endpoint lease can be another kind in the same store), a key unique within
its kind, flat string columns, and the ETag the store gave its current version. Every write is either
"create if absent" or "replace if the ETag still matches", so two handlers can never both win a step.

Backends: `table.TableRowStore` (Azure Table Storage; Azurite locally) and `memory.InMemoryRowStore`. Both
pass tests/contract/test_row_store.py. A backend raises only the errors below; a storage SDK's own exceptions
are translated where they occur and never reach the rules.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# Column names end up in a query string; only plain identifiers are allowed. Kinds and keys become Table
# Storage's PartitionKey and RowKey, which may not hold / \ # ? or control characters.
COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
KEY = re.compile(r"[^/\\#?\x00-\x1f\x7f-\x9f]{1,512}")


class StoreError(Exception):
    """The store could not do what was asked; the message says what and why."""


class StoreUnavailable(StoreError):
    """The storage service could not be reached or failed after its retries; trying later may succeed."""


class RowExists(StoreError):
    """`insert` found a row with that kind and key already."""


class Conflict(StoreError):
    """The row changed (or went) since it was read: re-read it and decide again."""


@dataclass(frozen=True)
class Row:
    """One stored row; `etag` is None until the store has written it."""

    kind: str
    key: str
    columns: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None


# A query condition: a column equals one value, or any of several.
Where = Mapping[str, str | Collection[str]]


@runtime_checkable
class RowStore(Protocol):
    """Create, read, query and compare-and-set rows. Every backend behaves alike (the contract suite)."""

    def insert(self, row: Row) -> Row:
        """Create the row; raise RowExists if its kind and key are taken. Returns it with its ETag."""
        ...

    def get(self, kind: str, key: str) -> Row | None:
        """The row, or None."""
        ...

    def query(self, kind: str, where: Where | None = None) -> Iterator[Row]:
        """Rows of `kind` whose columns match every condition (a column missing from a row never matches)."""
        ...

    def replace(self, row: Row) -> Row:
        """Overwrite the row if its stored ETag is still `row.etag` (else Conflict); returns the new ETag."""
        ...


def check_where(where: Where | None) -> dict[str, tuple[str, ...]]:
    """Conditions as column -> accepted values; ValueError for a column name that is not an identifier."""
    checked: dict[str, tuple[str, ...]] = {}
    for column, wanted in (where or {}).items():
        if not COLUMN_NAME.fullmatch(column):
            raise ValueError(f"not a column name: {column!r}")
        values = (wanted,) if isinstance(wanted, str) else tuple(wanted)
        if not values:
            raise ValueError(f"no value given for column {column!r}")
        checked[column] = values
    return checked


def check_row(row: Row) -> None:
    """Refuse keys and column names a backend could not store or query (the same rule for every backend)."""
    for part in (row.kind, row.key):
        if not KEY.fullmatch(part):
            raise ValueError(f"{part!r} cannot be a row kind or key (no / \\ # ? or control characters)")
    for column in row.columns:
        if not COLUMN_NAME.fullmatch(column) or column in ("PartitionKey", "RowKey", "Timestamp"):
            raise ValueError(f"row {row.kind}/{row.key}: {column!r} cannot be a column name")
