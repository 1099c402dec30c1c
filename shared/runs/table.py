"""The row store in Azure Table Storage (Azurite locally): kind = PartitionKey, key = RowKey.

Transient failures (429, 5xx, timeouts) are retried by the SDK's retry policy (shared.storage); what still
fails is translated here, so no `azure.core` exception reaches the rules above.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from shared.runs.port import (
    Conflict,
    Row,
    RowExists,
    StoreError,
    StoreUnavailable,
    Where,
    check_row,
    check_where,
)

_SYSTEM = ("PartitionKey", "RowKey", "Timestamp")


class TableRowStore:
    """One table; created on first use."""

    def __init__(self, service: TableServiceClient, table: str) -> None:
        self._table: TableClient = service.get_table_client(table)
        self.table = table
        self._created = False

    def insert(self, row: Row) -> Row:
        """Create the row; RowExists if taken."""
        check_row(row)
        self._ensure_table()
        try:
            meta = self._table.create_entity(_entity(row))
        except ResourceExistsError:
            raise RowExists(f"{row.kind}/{row.key} exists") from None
        except AzureError as exc:
            raise _translated(exc, f"create {row.kind}/{row.key}") from exc
        return Row(row.kind, row.key, dict(row.columns), _etag(meta))

    def get(self, kind: str, key: str) -> Row | None:
        """The row, or None."""
        self._ensure_table()
        try:
            return _row(self._table.get_entity(kind, key))
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise _translated(exc, f"read {kind}/{key}") from exc

    def query(self, kind: str, where: Where | None = None) -> Iterator[Row]:
        """Rows of `kind` matching every condition, filtered by the service (not read and dropped here)."""
        clauses, parameters = ["PartitionKey eq @kind"], {"kind": kind}
        for i, (column, values) in enumerate(check_where(where).items()):
            names = [f"c{i}v{j}" for j in range(len(values))]
            parameters.update(zip(names, values, strict=True))
            # The SDK substitutes @names only between spaces, hence "( ... )" with spaces inside.
            clauses.append("( " + " or ".join(f"{column} eq @{name}" for name in names) + " )")
        self._ensure_table()
        try:
            for entity in self._table.query_entities(" and ".join(clauses), parameters=parameters):
                yield _row(entity)
        except AzureError as exc:
            raise _translated(exc, f"query {kind} rows") from exc

    def replace(self, row: Row) -> Row:
        """Overwrite if the stored ETag is `row.etag`; Conflict otherwise (also when the row is gone)."""
        check_row(row)
        if row.etag is None:
            raise ValueError(f"replacing {row.kind}/{row.key} needs the ETag it was read with")
        try:
            meta = self._table.update_entity(_entity(row), mode=UpdateMode.REPLACE, etag=row.etag,
                                             match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError, ResourceExistsError) as exc:
            raise Conflict(f"{row.kind}/{row.key} changed since it was read") from exc
        except HttpResponseError as exc:
            if exc.status_code in (404, 409, 412):
                raise Conflict(f"{row.kind}/{row.key} changed since it was read") from exc
            raise _translated(exc, f"replace {row.kind}/{row.key}") from exc
        except AzureError as exc:
            raise _translated(exc, f"replace {row.kind}/{row.key}") from exc
        return Row(row.kind, row.key, dict(row.columns), _etag(meta))

    def _ensure_table(self) -> None:
        if self._created:
            return
        try:
            with contextlib.suppress(ResourceExistsError):
                self._table.create_table()
        except AzureError as exc:
            raise _translated(exc, f"create table {self.table}") from exc
        self._created = True


def _entity(row: Row) -> dict[str, Any]:
    return {"PartitionKey": row.kind, "RowKey": row.key, **row.columns}


def _row(entity: Mapping[str, Any]) -> Row:
    columns = {k: str(v) for k, v in entity.items() if k not in _SYSTEM}
    return Row(str(entity["PartitionKey"]), str(entity["RowKey"]), columns,
               entity.metadata.get("etag") if hasattr(entity, "metadata") else None)


def _etag(meta: Mapping[str, Any]) -> str | None:
    etag = meta.get("etag")
    return str(etag) if etag else None


def _translated(exc: AzureError, doing: str) -> StoreError:
    """A storage failure as the store's own error, keeping the service's reason and no request details."""
    status = getattr(exc, "status_code", None)
    reason = str(getattr(exc, "reason", "") or type(exc).__name__)
    if status is None or status == 429 or status >= 500:
        return StoreUnavailable(f"table storage: could not {doing} ({reason}); the storage account is "
                                "unreachable or busy, try again later")
    code = getattr(exc, "error_code", None) or status
    return StoreError(f"table storage refused to {doing}: {code} {reason}")
