"""The ledger's rules over the in-memory row store: compare-and-set, leases, the state machine, the record.

The same rules run over Table Storage in production; tests/contract/test_row_store.py holds both stores to
the primitives these rules use.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.runs import (
    REDEPLOYABLE,
    RETRYABLE,
    TRANSITIONS,
    Conflict,
    IllegalTransition,
    Ledger,
    Run,
    State,
    can_redeploy,
    can_retry,
    operator_actions,
)
from shared.runs.memory import InMemoryRowStore


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(InMemoryRowStore())


def test_create_is_unique_and_history_records_each_transition(ledger: Ledger) -> None:
    run = ledger.create(Run("run-1", State.VALIDATED, content_sha256="ab"))
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


def test_a_step_cannot_store_a_field_the_record_does_not_declare(ledger: Ledger) -> None:
    run = ledger.create(Run("run-k", State.REGISTERED))
    assert run is not None
    # deploy.py once read fields["endpoint_name"], which nothing ever wrote: such keys are refused now.
    with pytest.raises(ValueError, match="endpoint_name cannot be set"):
        ledger.advance(run, State.DEPLOYING, endpoint_name="ep")
    with pytest.raises(ValueError, match="state, updated_at cannot be set"):
        ledger.update(run, state=State.LIVE, updated_at=None)
    with pytest.raises(ValueError, match="rows"):
        ledger.update(run, rows="48")  # the record's type is int
    stored = ledger.get("run-k")
    assert stored is not None and stored.state == State.REGISTERED and stored.rows is None


def test_only_one_of_many_concurrent_claims_wins(ledger: Ledger) -> None:
    run = ledger.create(Run("run-4", State.VALIDATED))
    assert run is not None
    wins: list[Run] = []
    lost: list[Conflict] = []
    barrier = threading.Barrier(10)

    def claim() -> None:
        barrier.wait()
        try:
            got = ledger.claim(run, "submit", timedelta(minutes=5))
        except Conflict as exc:  # another handler wrote first: the caller reads the run again
            lost.append(exc)
            return
        if got is not None:
            wins.append(got)

    threads = [threading.Thread(target=claim) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(lost) == 9


def test_expired_lease_can_be_taken_over() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    ledger = Ledger(InMemoryRowStore(), clock=lambda: now[0])
    run = ledger.create(Run("run-5", State.VALIDATED))
    assert run is not None
    held = ledger.claim(run, "submit", timedelta(minutes=5))
    assert held is not None
    assert ledger.claim(held, "submit", timedelta(minutes=5)) is None
    now[0] += timedelta(minutes=6)
    assert ledger.claim(held, "submit", timedelta(minutes=5)) is not None


def test_advance_with_hold_keeps_the_lease_for_the_new_state(ledger: Ledger) -> None:
    run = ledger.create(Run("run-h", State.REGISTERED))
    assert run is not None
    deploying = ledger.advance(run, State.DEPLOYING, hold=timedelta(minutes=30), endpoint="ep")
    assert deploying.lease_step == "deploying" and deploying.lease_live(ledger.now())
    live = ledger.advance(deploying, State.LIVE)
    assert live.lease_step == "" and live.lease_until is None


def test_runs_are_found_by_state_and_field(ledger: Ledger) -> None:
    for run_id, state, endpoint in (("s-1", State.SUBMITTED, ""), ("s-2", State.LIVE, "ep"),
                                    ("s-3", State.RUNNING, ""), ("s-4", State.LIVE, "other")):
        ledger.create(Run(run_id, state, endpoint=endpoint))
    assert {r.run_id for r in ledger.find(state=(State.SUBMITTED, State.RUNNING))} == {"s-1", "s-3"}
    assert [r.run_id for r in ledger.find(state=State.LIVE, endpoint="ep")] == ["s-2"]
    with pytest.raises(ValueError, match="not by 'rows'"):
        ledger.find(rows="1")


def test_alert_classes_are_marked_once(ledger: Ledger) -> None:
    run = ledger.create(Run("run-6", State.FAILED))
    assert run is not None
    assert ledger.mark_alerted(run, "job.failed") is not None
    assert ledger.mark_alerted(run, "job.failed") is None  # stale copy: re-read, already there


def test_operator_actions_agree_with_the_state_machine() -> None:
    assert all(State.DEPLOYING in TRANSITIONS[state] for state in REDEPLOYABLE)
    assert all(State.VALIDATED in TRANSITIONS[state] for state in RETRYABLE)
    torn = Run("r", State.TORN_DOWN, model_name="m", train_uri="u")
    assert can_redeploy(torn) and not can_retry(torn) and operator_actions(torn) == ["redeploy"]
    assert not can_redeploy(Run("r", State.TORN_DOWN))  # no registered model
    failed = Run("r", State.FAILED, train_uri="u")
    assert can_retry(failed) and operator_actions(failed) == ["retry"]
    assert not can_retry(Run("r", State.FAILED))  # nothing staged
    assert operator_actions(Run("r", State.LIVE, model_name="m", train_uri="u")) == []
