"""Run state in Azure Table Storage: one row per run, moved only by compare-and-set on the row's ETag.

Triggers fire at least once, sometimes concurrently. Every effect (submit, register, deploy, alert) is taken
as a *step*: a handler first claims the step with a lease written by compare-and-set, performs the effect
(itself idempotent on a deterministic name), then advances the state. A second handler loses the
compare-and-set, or finds a live lease and leaves; a lease past its timeout can be taken over, so a handler
that died mid-step does not strand the run.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from shared.observability import bind_run

PARTITION = "run"


class State(StrEnum):
    RECEIVED = "received"
    VALIDATED = "validated"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    REGISTERED = "registered"
    DEPLOYING = "deploying"
    LIVE = "live"
    ROLLED_BACK = "rolled_back"
    TORN_DOWN = "torn_down"


# The state machine. A transition not listed here is refused, so a stale or out-of-order event cannot move
# a run backwards (e.g. a late "Running" after "Completed").
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.VALIDATED, State.REJECTED, State.DUPLICATE}),
    State.VALIDATED: frozenset({State.SUBMITTED, State.FAILED}),
    State.SUBMITTED: frozenset({State.RUNNING, State.SUCCEEDED, State.FAILED, State.CANCELED}),
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED}),
    State.SUCCEEDED: frozenset({State.REGISTERED, State.FAILED}),
    State.REGISTERED: frozenset({State.DEPLOYING, State.FAILED}),
    State.DEPLOYING: frozenset({State.LIVE, State.ROLLED_BACK}),
    State.LIVE: frozenset({State.TORN_DOWN, State.ROLLED_BACK}),
    State.ROLLED_BACK: frozenset({State.DEPLOYING}),
    State.TORN_DOWN: frozenset({State.DEPLOYING}),
    State.REJECTED: frozenset(),
    State.DUPLICATE: frozenset(),
    State.FAILED: frozenset({State.VALIDATED}),
    State.CANCELED: frozenset({State.VALIDATED}),
}


class Conflict(Exception):
    """Another handler changed the run first; re-read it and decide again."""


class IllegalTransition(Exception):
    """The run is not in a state this step may leave from (a stale or duplicate trigger)."""


@dataclass(frozen=True)
class Run:
    """One run: an upload's journey from blob to live endpoint. `etag` guards every write."""

    run_id: str
    state: State
    content_sha256: str = ""
    upload: str = ""  # container/name of the uploaded blob
    upload_etag: str = ""
    job_name: str = ""
    model_name: str = ""
    model_version: str = ""
    endpoint: str = ""
    deployment: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)  # everything else (counts, URIs, costs, errors)
    history: tuple[Mapping[str, str], ...] = ()
    alerts: tuple[str, ...] = ()
    lease_step: str = ""
    lease_until: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    etag: str | None = None

    def lease_live(self, now: datetime) -> bool:
        return bool(self.lease_step) and self.lease_until is not None and self.lease_until > now


_COLUMNS = ("content_sha256", "upload", "upload_etag", "job_name", "model_name", "model_version",
            "endpoint", "deployment", "lease_step")


def _to_entity(run: Run) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": PARTITION, "RowKey": run.run_id, "state": run.state.value}
    for column in _COLUMNS:
        entity[column] = getattr(run, column)
    entity["fields"] = json.dumps(dict(run.fields), default=str)
    entity["history"] = json.dumps(list(run.history))
    entity["alerts"] = json.dumps(list(run.alerts))
    entity["lease_until"] = run.lease_until.isoformat() if run.lease_until else ""
    entity["created_at"] = run.created_at.isoformat() if run.created_at else ""
    entity["updated_at"] = run.updated_at.isoformat() if run.updated_at else ""
    return entity


def _from_entity(entity: Mapping[str, Any]) -> Run:
    def when(key: str) -> datetime | None:
        raw = entity.get(key) or ""
        return datetime.fromisoformat(raw) if raw else None

    return Run(
        run_id=entity["RowKey"],
        state=State(entity["state"]),
        **{column: entity.get(column) or "" for column in _COLUMNS},
        fields=json.loads(entity.get("fields") or "{}"),
        history=tuple(json.loads(entity.get("history") or "[]")),
        alerts=tuple(json.loads(entity.get("alerts") or "[]")),
        lease_until=when("lease_until"),
        created_at=when("created_at"),
        updated_at=when("updated_at"),
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
    )


class Ledger:
    """The runs table. All writes are create-if-absent or replace-if-unchanged (ETag)."""

    def __init__(self, service: TableServiceClient, table: str, *, clock: Any = None) -> None:
        self._table: TableClient = service.get_table_client(table)
        self._clock = clock or (lambda: datetime.now(UTC))
        with contextlib.suppress(ResourceExistsError):
            self._table.create_table()

    def now(self) -> datetime:
        return self._clock()  # type: ignore[no-any-return]

    def create(self, run: Run, note: str = "") -> Run | None:
        """Insert a new run; None if a run with that id already exists (someone else created it)."""
        bind_run(run)
        now = self.now()
        run = replace(run, created_at=now, updated_at=now,
                      history=(*run.history, _event(run.state, now, note)))
        try:
            meta = self._table.create_entity(_to_entity(run))
        except ResourceExistsError:
            return None
        return replace(run, etag=meta.get("etag"))

    def get(self, run_id: str) -> Run | None:
        try:
            return _from_entity(self._table.get_entity(PARTITION, run_id))
        except HttpResponseError as exc:
            if exc.status_code == 404:
                return None
            raise

    def find(self, **equals: str) -> list[Run]:
        """Runs whose columns equal the given values (e.g. job_name=..., upload=...)."""
        unknown = set(equals) - {*_COLUMNS, "state"}
        if unknown:
            raise ValueError(f"not a ledger column: {sorted(unknown)}")
        conditions = " and ".join(f"{key} eq @{key}" for key in equals)
        query = f"PartitionKey eq '{PARTITION}'" + (f" and {conditions}" if conditions else "")
        return [_from_entity(e) for e in self._table.query_entities(query, parameters=dict(equals))]

    def in_states(self, states: Iterable[State]) -> list[Run]:
        """Runs in any of `states` (a server-side filter: the timer need not read finished runs)."""
        names = [s.value for s in states]
        condition = " or ".join(f"state eq @s{i}" for i in range(len(names)))
        # The SDK substitutes @names between spaces only, hence "( ... )".
        query = f"PartitionKey eq '{PARTITION}' and ( {condition} )"
        return [_from_entity(e) for e in
                self._table.query_entities(query, parameters={f"s{i}": n for i, n in enumerate(names)})]

    def all(self) -> Iterator[Run]:
        for entity in self._table.list_entities():
            yield _from_entity(entity)

    def claim(self, run: Run, step: str, ttl: timedelta) -> Run | None:
        """Take the lease for `step`; None if another handler holds a live lease or wrote first."""
        now = self.now()
        if run.lease_live(now):
            return None
        try:
            return self._replace(replace(run, lease_step=step, lease_until=now + ttl, updated_at=now))
        except Conflict:
            return None

    def advance(self, run: Run, to: State, note: str = "", *, hold: timedelta | None = None,
                **changes: Any) -> Run:
        """Move the run to `to`, recording the transition in its history.

        The lease is released, or with `hold` kept for the new state's own step (e.g. deploying).

        Raises IllegalTransition if the state machine forbids it and Conflict if the row changed since read.
        """
        if to not in TRANSITIONS[run.state]:
            raise IllegalTransition(f"run {run.run_id}: {run.state} -> {to} is not allowed")
        now = self.now()
        extra = {k: changes.pop(k) for k in list(changes) if k not in _COLUMNS}
        lease_step, lease_until = (to.value, now + hold) if hold else ("", None)
        updated = replace(run, state=to, lease_step=lease_step, lease_until=lease_until, updated_at=now,
                          fields={**run.fields, **extra}, history=(*run.history, _event(to, now, note)),
                          **changes)
        return self._replace(updated)

    def update(self, run: Run, **changes: Any) -> Run:
        """Change columns or fields without a state change (same compare-and-set)."""
        extra = {k: changes.pop(k) for k in list(changes) if k not in _COLUMNS}
        return self._replace(replace(run, fields={**run.fields, **extra}, updated_at=self.now(), **changes))

    def mark_alerted(self, run: Run, alert_class: str) -> Run | None:
        """Record that the alert of this class was sent; None if it already was (send nothing then)."""
        current: Run | None = run
        while current is not None:
            if alert_class in current.alerts:
                return None
            try:
                return self._replace(replace(current, alerts=(*current.alerts, alert_class)))
            except Conflict:
                current = self.get(run.run_id)
        return None

    def _replace(self, run: Run) -> Run:
        bind_run(run)  # every later log line of this handling carries the run's ids
        try:
            meta = self._table.update_entity(_to_entity(run), mode=UpdateMode.REPLACE, etag=run.etag,
                                             match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceExistsError) as exc:
            raise Conflict(f"run {run.run_id} changed while we worked on it") from exc
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                raise Conflict(f"run {run.run_id} changed while we worked on it") from exc
            raise
        return replace(run, etag=meta.get("etag"))


def _event(state: State, at: datetime, note: str) -> dict[str, str]:
    return {"state": state.value, "at": at.isoformat(), **({"note": note} if note else {})}


def new_owner() -> str:
    """A token naming one handler invocation (for logs and leases)."""
    return uuid.uuid4().hex[:12]
