"""A run as a row, and back: one column per field of `Run`.

Text fields are stored as they are (so the table reads well in Storage Explorer and `find(job_name=...)`
compares plain strings); numbers, flags, times and nested values as JSON. Decoding checks every value
against the field's type, so a malformed row fails loudly instead of reaching a handler half-read.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import msgspec

from shared.runs.port import Row
from shared.runs.record import Run

KIND = "run"
_HINTS = typing.get_type_hints(Run)
# Columns stored as plain text: str fields and the State enum (a str).
TEXT = frozenset(name for name, hint in _HINTS.items() if isinstance(hint, type) and issubclass(hint, str))
COLUMNS = frozenset(f.name for f in dataclasses.fields(Run)) - {"run_id", "etag"}


class MalformedRun(ValueError):
    """A run's values do not fit the record's types (written by a bug, or by hand)."""


def check(run: Run) -> Run:
    """`run` if every value has its field's type; MalformedRun naming the field otherwise."""
    try:
        msgspec.convert(msgspec.to_builtins(run), Run)
    except (msgspec.ValidationError, TypeError) as exc:
        raise MalformedRun(f"run {run.run_id}: {exc}") from None
    return run


def to_row(run: Run) -> Row:
    """The row holding `run` (its ETag carried along for the compare-and-set)."""
    values = msgspec.to_builtins(check(run))
    columns = {name: value if name in TEXT else msgspec.json.encode(value).decode()
               for name, value in values.items() if name in COLUMNS}
    return Row(KIND, run.run_id, columns, run.etag)


def from_row(row: Row) -> Run:
    """The run a row holds; columns this version does not know are left out (a newer writer's)."""
    values: dict[str, Any] = {"run_id": row.key, "etag": row.etag}
    try:
        for name, raw in row.columns.items():
            if name in COLUMNS:
                values[name] = raw if name in TEXT else msgspec.json.decode(raw)
        return msgspec.convert(values, Run)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise MalformedRun(f"stored run {row.key}: {exc}") from None


def column_value(name: str, value: str) -> str:
    """`value` as the query value for column `name`; ValueError if runs cannot be found by `name`."""
    if name not in TEXT or name not in COLUMNS:
        queryable = ", ".join(sorted(TEXT & COLUMNS))
        raise ValueError(f"runs can be found by {queryable}; not by {name!r}")
    return value
