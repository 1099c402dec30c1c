"""The ledger against a real Table service (Azurite): compare-and-set, leases, the state machine."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.ledger import Conflict, IllegalTransition, Ledger, Run, State
from shared.settings import Settings
from shared.storage import table_service


@pytest.fixture
def ledger(settings: Settings) -> Ledger:
    return Ledger(table_service(settings.storage), settings.ledger_table)


def test_create_is_unique_and_history_records_each_transition(ledger: Ledger) -> None:
    run = ledger.create(Run("run-1", State.VALIDATED, content_sha256="ab", job_name=""))
    assert run is not None
    assert ledger.create(Run("run-1", State.VALIDATED)) is None
    run = ledger.advance(run, State.SUBMITTED, job_name="ftap-run-1")
    stored = ledger.get("run-1")
    assert stored is not None and stored.state == State.SUBMITTED and stored.job_name == "ftap-run-1"
    assert [h["state"] for h in stored.history] == ["validated", "submitted"]
    assert ledger.find(job_name="ftap-run-1")[0].run_id == "run-1"


def test_stale_etag_loses(ledger: Ledger) -> None:
    run = ledger.create(Run("run-2", State.SUBMITTED))
    assert run is not None
    ledger.advance(run, State.RUNNING)
    with pytest.raises(Conflict):
        ledger.advance(run, State.SUCCEEDED)  # `run` carries the old ETag


def test_state_machine_refuses_backwards_moves(ledger: Ledger) -> None:
    run = ledger.create(Run("run-3", State.SUCCEEDED))
    assert run is not None
    with pytest.raises(IllegalTransition):
        ledger.advance(run, State.RUNNING)


def test_only_one_of_many_concurrent_claims_wins(ledger: Ledger) -> None:
    run = ledger.create(Run("run-4", State.VALIDATED))
    assert run is not None
    wins: list[Run] = []
    barrier = threading.Barrier(10)

    def claim() -> None:
        barrier.wait()
        got = ledger.claim(run, "submit", timedelta(minutes=5))
        if got is not None:
            wins.append(got)

    threads = [threading.Thread(target=claim) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_expired_lease_can_be_taken_over(settings: Settings) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    ledger = Ledger(table_service(settings.storage), settings.ledger_table, clock=lambda: now[0])
    run = ledger.create(Run("run-5", State.VALIDATED))
    assert run is not None
    held = ledger.claim(run, "submit", timedelta(minutes=5))
    assert held is not None
    assert ledger.claim(held, "submit", timedelta(minutes=5)) is None
    now[0] += timedelta(minutes=6)
    assert ledger.claim(held, "submit", timedelta(minutes=5)) is not None


def test_runs_are_found_by_state(ledger: Ledger) -> None:
    for run_id, state in (("s-1", State.SUBMITTED), ("s-2", State.LIVE), ("s-3", State.RUNNING)):
        ledger.create(Run(run_id, state))
    found = {r.run_id for r in ledger.in_states((State.SUBMITTED, State.RUNNING))}
    assert found == {"s-1", "s-3"}


def test_alert_classes_are_marked_once(ledger: Ledger) -> None:
    run = ledger.create(Run("run-6", State.FAILED))
    assert run is not None
    assert ledger.mark_alerted(run, "job.failed") is not None
    assert ledger.mark_alerted(run, "job.failed") is None  # stale copy: re-read, already there
