"""What an operator can do to a run: redeploy a torn-down one, retry a failed one.

Both record the request and queue the run's next step (the step queue does the work), so they answer at once;
the ledger's compare-and-set guards them like any trigger: of two requests at once, one wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.runs import Conflict, IllegalTransition, Run
from shared.runs.record import is_run_id

if TYPE_CHECKING:
    from shared.lifecycle import Lifecycle


class RunNotFound(LookupError):
    """No run has this id."""

    def __init__(self, run_id: str) -> None:
        shown = run_id if len(run_id) <= 64 else run_id[:60] + "…"  # a 20,000-character id is not echoed
        super().__init__(f"no run with id {shown!r}; GET /api/runs lists the runs")
        self.run_id = shown


class ActionRefused(Exception):
    """The run's state does not allow the action (or another handler is working on the run)."""


def find_run(life: Lifecycle, run_id: str) -> Run:
    """The run, or RunNotFound (at once, for an id no run can have: no storage call)."""
    if not is_run_id(run_id):
        raise RunNotFound(run_id)
    run = life.ledger.get(run_id)
    if run is None:
        raise RunNotFound(run_id)
    return run


def redeploy(life: Lifecycle, run_id: str) -> Run:
    """Ask for a torn-down or rolled-back run's model to be deployed again; returns the run, now deploying."""
    run = find_run(life, run_id)
    try:
        return life.redeploy(run)
    except (IllegalTransition, Conflict) as exc:
        raise ActionRefused(str(exc)) from exc


def retry(life: Lifecycle, run_id: str) -> Run:
    """Ask for a failed or canceled run's staged data to be submitted again as a new job; returns the run."""
    run = find_run(life, run_id)
    try:
        return life.retry(run)
    except (IllegalTransition, Conflict) as exc:
        raise ActionRefused(str(exc)) from exc
