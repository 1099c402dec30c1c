"""One conflict-retry helper on the ledger: a lost compare-and-set is tried again on the run as re-read."""

from __future__ import annotations

import pytest

from shared.runs import Conflict, Ledger, Run, State
from shared.runs.memory import InMemoryRowStore


def test_a_lost_write_is_retried_on_the_fresh_run_and_wins() -> None:
    ledger = Ledger(InMemoryRowStore())
    stale = ledger.create(Run("run-r1", State.SUBMITTED))
    assert stale is not None
    ledger.update(stale, note="another handler wrote first")
    seen: list[int] = []

    def note(current: Run) -> Run:
        seen.append(len(current.history))
        return ledger.update(current, note="ours")

    done = ledger.retry_on_conflict(stale, note)
    assert done is not None and len(seen) == 2 and seen[1] == seen[0] + 1
    assert [e.get("note") for e in done.history][-2:] == ["another handler wrote first", "ours"]


def test_a_run_that_keeps_changing_raises_the_last_conflict_after_the_tries() -> None:
    ledger = Ledger(InMemoryRowStore())
    run = ledger.create(Run("run-r2", State.SUBMITTED))
    assert run is not None
    calls: list[Run] = []

    def always_loses(current: Run) -> Run:
        calls.append(current)
        ledger.update(current, note="someone else")  # moves the run on under us
        return ledger.update(current, note="ours")  # same ETag as the write above: lost

    with pytest.raises(Conflict):
        ledger.retry_on_conflict(run, always_loses, tries=3)
    assert len(calls) == 3


def test_mark_alerted_uses_it_and_an_alert_is_marked_once() -> None:
    ledger = Ledger(InMemoryRowStore())
    run = ledger.create(Run("run-r3", State.FAILED))
    assert run is not None
    ledger.update(run, note="moved on since it was read")
    assert ledger.mark_alerted(run, "run.failed") is not None  # the stale copy lost, the fresh one wins
    assert ledger.mark_alerted(run, "run.failed") is None


def test_a_job_outcome_is_recorded_even_when_the_run_changed_since_it_was_read() -> None:
    from types import SimpleNamespace

    from shared.lifecycle import job_status

    ledger = Ledger(InMemoryRowStore())
    read = ledger.create(Run("run-r4", State.RUNNING, job_name="job-4"))
    assert read is not None
    ledger.update(read, note="a poll noted progress meanwhile")  # a bookkeeping write, same state
    moved = job_status._move(SimpleNamespace(ledger=ledger), read, State.SUCCEEDED, "Completed")  # type: ignore[arg-type]
    assert moved is not None and ledger.get("run-r4").state == State.SUCCEEDED  # type: ignore[union-attr]
