"""on_job_event: an Azure ML run event (or the local engine's copy of one) moves its run forward.

Events arrive twice, late or out of order, and pipeline step runs send their own. Anything that does not
move one of our runs forward along the state machine is acknowledged and ignored, with a debug line.
"""

from __future__ import annotations

from typing import Any

from shared.events import RunEvent
from shared.ledger import Conflict, IllegalTransition, Run, State
from shared.lifecycle import deploy
from shared.lifecycle.context import Context, log

_ACTIVE = frozenset({"NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running",
                     "Finalizing", "CancelRequested"})
_ENDED = {"Completed": State.SUCCEEDED, "Failed": State.FAILED, "Canceled": State.CANCELED,
          "NotResponding": State.FAILED}


def on_job_event(ctx: Context, event: RunEvent) -> str:
    """Apply one run event to the run whose job it names."""
    runs = ctx.ledger.find(job_name=event.run_id)
    if not runs:
        log.debug("ignored %s for %s: not one of our jobs (step run or another app's)",
                  event.event_type, event.run_id)
        return f"ignored: job {event.run_id} is not ours"
    return apply_status(ctx, runs[0], event.run_status)


def apply_status(ctx: Context, run: Run, status: str, error: str = "") -> str:
    """Move `run` as a job status says (shared by events and the reconciler's polling)."""
    if status in _ACTIVE:
        if run.state != State.SUBMITTED:
            log.debug("ignored stale %s for run %s in state %s", status, run.run_id, run.state)
            return f"ignored: run {run.run_id} is already {run.state}"
        return _move(ctx, run, State.RUNNING, status)
    target = _ENDED.get(status)
    if target is None:
        return f"ignored: unknown status {status!r}"
    if run.state in (State.SUBMITTED, State.RUNNING):
        outcome = _move(ctx, run, target, status, error=error)
        if target != State.SUCCEEDED:
            current = ctx.ledger.get(run.run_id)
            if current is not None and current.state == target:
                ctx.alert(current, f"job.{target.value}", "error",
                          f"fine-tune job {run.job_name} ended {status}" + (f": {error}" if error else ""))
            return outcome
    current = ctx.ledger.get(run.run_id) or run
    if current.state in (State.SUCCEEDED, State.REGISTERED):
        final = deploy.advance(ctx, current)
        return f"run {run.run_id}: {final.state}"
    log.debug("ignored %s for run %s in state %s", status, run.run_id, current.state)
    return f"ignored: run {run.run_id} is already {current.state}"


def _move(ctx: Context, run: Run, to: State, status: str, **fields: Any) -> str:
    try:
        ctx.ledger.advance(run, to, note=f"job {status}", **{k: v for k, v in fields.items() if v})
    except IllegalTransition:
        return f"ignored: run {run.run_id} cannot go {run.state} -> {to}"
    except Conflict:  # another handler moved it first, which is fine
        return f"run {run.run_id}: moved by another handler"
    return f"run {run.run_id}: {to}"
