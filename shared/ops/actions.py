"""What an operator can do to a run: redeploy a torn-down one, retry a failed one.

Both go through the lifecycle's own steps, so the ledger's compare-and-set guards them like any trigger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.runs import Conflict, IllegalTransition, Run

if TYPE_CHECKING:
    from shared.lifecycle import Lifecycle


class RunNotFound(LookupError):
    """No run has this id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}; GET /api/runs lists the runs")
        self.run_id = run_id


class ActionRefused(Exception):
    """The run's state does not allow the action (or another handler is working on the run)."""


def find_run(life: Lifecycle, run_id: str) -> Run:
    """The run, or RunNotFound."""
    run = life.ledger.get(run_id)
    if run is None:
        raise RunNotFound(run_id)
    return run


def redeploy(life: Lifecycle, run_id: str) -> Run:
    """Deploy a torn-down or rolled-back run's registered model again; returns the run afterwards."""
    run = find_run(life, run_id)
    try:
        deployed = life.redeploy(run)
    except (IllegalTransition, Conflict) as exc:
        raise ActionRefused(str(exc)) from exc
    if deployed is None:
        raise ActionRefused(f"run {run_id} is being worked on by another handler; try again shortly")
    return find_run(life, run_id)


def retry(life: Lifecycle, run_id: str) -> Run:
    """Submit a failed or canceled run's staged data again as a new job; returns the run afterwards."""
    run = find_run(life, run_id)
    try:
        life.retry(run)
    except (IllegalTransition, Conflict) as exc:
        raise ActionRefused(str(exc)) from exc
    return find_run(life, run_id)
