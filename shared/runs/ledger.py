"""The ledger: the rules of run state, written once above the row store.

Triggers fire at least once, sometimes concurrently. Every effect (submit, register, deploy, alert) is taken
as a *step*: a handler first claims the step with a lease written by compare-and-set, performs the effect
(itself idempotent on a deterministic name), then advances the state. A second handler loses the
compare-and-set, or finds a live lease and leaves; a lease past its timeout can be taken over, so a handler
that died mid-step does not strand the run. The store below only knows rows and ETags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from shared.observability import bind_run
from shared.runs import codec
from shared.runs.activity import ActivityMarks
from shared.runs.endpoint_lease import EndpointLeases
from shared.runs.port import Conflict, RowExists, RowStore
from shared.runs.record import BOOKKEEPING, TRANSITIONS, IllegalTransition, Run, State

T = TypeVar("T")

Clock = Callable[[], datetime]


class Ledger:
    """Runs over a row store. All writes are create-if-absent or replace-if-unchanged (ETag)."""

    def __init__(self, store: RowStore, *, clock: Clock | None = None) -> None:
        self.store = store
        self._clock = clock or (lambda: datetime.now(UTC))
        # Whose turn it is to deploy to each endpoint (rows of another kind in the same store).
        self.endpoints = EndpointLeases(store, self.get, self.now)
        # The front door's requests per endpoint: the idle signal the sweep reads beside the platform's.
        self.activity = ActivityMarks(store)

    def now(self) -> datetime:
        """The ledger's clock (tests move it)."""
        return self._clock()

    def create(self, run: Run, note: str = "") -> Run | None:
        """Insert a new run; None if a run with that id already exists (someone else created it)."""
        bind_run(run)
        now = self.now()
        run = dataclasses.replace(run, created_at=now, updated_at=now,
                                  history=(*run.history, _event(run.state, now, note)))
        try:
            row = self.store.insert(codec.to_row(run))
        except RowExists:
            return None
        return dataclasses.replace(run, etag=row.etag)

    def get(self, run_id: str) -> Run | None:
        """The run, or None."""
        row = self.store.get(codec.KIND, run_id)
        return codec.from_row(row) if row is not None else None

    def find(self, *, state: State | Iterable[State] | None = None, **equals: str) -> list[Run]:
        """Runs in `state` (one or any of several) whose text fields equal the given values.

        A server-side filter, e.g. `find(job_name=...)`, `find(state=State.LIVE, endpoint=...)`.
        """
        where: dict[str, str | tuple[str, ...]] = {k: codec.column_value(k, v) for k, v in equals.items()}
        if state is not None:
            where["state"] = (state.value,) if isinstance(state, State) else tuple(s.value for s in state)
        return [codec.from_row(row) for row in self.store.query(codec.KIND, where)]

    def all(self) -> Iterator[Run]:
        """Every run."""
        for row in self.store.query(codec.KIND):
            yield codec.from_row(row)

    def claim(self, run: Run, step: str, ttl: timedelta) -> Run | None:
        """Take the lease for `step`; None if another handler holds a live lease. Raises Conflict if the run
        changed since it was read (another handler wrote first): `retry_on_conflict` judges it afresh."""
        now = self.now()
        if run.lease_live(now):
            return None
        return self._replace(dataclasses.replace(run, lease_step=step, lease_until=now + ttl, updated_at=now))

    def advance(self, run: Run, to: State, note: str = "", *, hold: timedelta | None = None,
                **changes: Any) -> Run:
        """Move the run to `to`, recording the transition in its history, with `changes` to its fields.

        The lease is released, or with `hold` kept for the new state's own step (e.g. deploying).

        Raises IllegalTransition if the state machine forbids it, Conflict if the run changed since it was
        read, and ValueError (before writing) for a change that is not a field of Run or has the wrong type.
        """
        if to not in TRANSITIONS[run.state]:
            raise IllegalTransition(f"run {run.run_id}: {run.state} -> {to} is not allowed")
        now = self.now()
        lease_step, lease_until = (to.value, now + hold) if hold else ("", None)
        updated = dataclasses.replace(_changed(run, changes), state=to, lease_step=lease_step,
                                      lease_until=lease_until, updated_at=now,
                                      history=(*run.history, _event(to, now, note)))
        return self._replace(updated)

    def update(self, run: Run, note: str = "", *, step: str = "", release: bool = False,
               **changes: Any) -> Run:
        """Change fields without a state change (same compare-and-set and the same checks as `advance`).

        A `note` is recorded in the history under the current state (with `step`, the step that wrote it:
        a deployment's polls show on the timeline); `release` gives up the lease.
        """
        now = self.now()
        updated = dataclasses.replace(_changed(run, changes), updated_at=now)
        if note:
            updated = dataclasses.replace(updated, history=(*run.history, _event(run.state, now, note, step)))
        if release:
            updated = dataclasses.replace(updated, lease_step="", lease_until=None)
        return self._replace(updated)

    def mark_alerted(self, run: Run, alert_class: str) -> Run | None:
        """Record that the alert of this class was sent; None if it already was (send nothing then)."""
        def mark(current: Run) -> Run | None:
            if alert_class in current.alerts:
                return None
            return self._replace(dataclasses.replace(current, alerts=(*current.alerts, alert_class)))

        return self.retry_on_conflict(run, mark, tries=None)

    def retry_on_conflict(self, run: Run, change: Callable[[Run], T], tries: int | None = 3) -> T | None:
        """`change(run)`; when it loses the compare-and-set (Conflict: another handler wrote first), again on
        the run as re-read, at most `tries` times in all (None: until it wins). None if the run is gone; the
        last Conflict is raised if the run kept changing. `change` decides afresh each time from the run."""
        current, attempt = run, 1
        while True:
            try:
                return change(current)
            except Conflict:
                if tries is not None and attempt >= tries:
                    raise
            fresh = self.get(run.run_id)
            if fresh is None:
                return None
            current, attempt = fresh, attempt + 1

    def _replace(self, run: Run) -> Run:
        bind_run(run)  # every later log line of this handling carries the run's ids
        row = self.store.replace(codec.to_row(run))
        return dataclasses.replace(run, etag=row.etag)


def _changed(run: Run, changes: dict[str, Any]) -> Run:
    """`run` with a step's changes; only the record's own data fields, never the ledger's bookkeeping."""
    unknown = sorted((set(changes) - codec.COLUMNS) | (set(changes) & BOOKKEEPING))
    if unknown:
        raise ValueError(f"run {run.run_id}: {', '.join(unknown)} cannot be set by a step; the fields are "
                         "declared in shared/runs/record.py")
    return codec.check(dataclasses.replace(run, **changes))


def _event(state: State, at: datetime, note: str, step: str = "") -> dict[str, str]:
    return {"state": state.value, "at": at.isoformat(), **({"note": note} if note else {}),
            **({"step": step} if step else {})}
