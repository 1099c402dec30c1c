"""on_job_event: a job's status (from an Azure ML run event, or the reconciler's poll) moves its run forward.

Events arrive twice, late or out of order, and pipeline step runs send their own. Anything that does not
move one of our runs forward along the state machine is acknowledged and ignored, with a debug line.
"""

from __future__ import annotations

from shared.events import RunEvent
from shared.lifecycle import deploy
from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.platforms.port import ACTIVE_STATUSES, JobStatus
from shared.runs import Conflict, IllegalTransition, Run, State

# Where a run goes when its job ends with each terminal status.
ENDED = {JobStatus.COMPLETED: State.SUCCEEDED, JobStatus.FAILED: State.FAILED,
         JobStatus.CANCELED: State.CANCELED, JobStatus.NOT_RESPONDING: State.FAILED}


def on_job_event(ctx: Context, event: RunEvent) -> Outcome:
    """Apply one job event to the run whose job it names."""
    runs = ctx.ledger.find(job_name=event.job_name)
    if not runs:
        log.debug("ignored %s for %s: not one of our jobs (step run or another app's)",
                  event.event_type, event.job_name)
        return Outcome(Result.IGNORED, detail=f"job {event.job_name} is not ours")
    return apply_status(ctx, runs[0], event.job_status)


def apply_status(ctx: Context, run: Run, status: str, error: str = "") -> Outcome:
    """Move `run` as its job's status says (shared by events and the reconciler's polling)."""
    known = JobStatus.parse(status)
    if known in ACTIVE_STATUSES:
        if run.state != State.SUBMITTED:
            log.debug("ignored stale %s for run %s in state %s", status, run.run_id, run.state)
            return Outcome(Result.IGNORED, run.run_id, run.state, f"stale {status}")
        return _move(ctx, run, State.RUNNING, status)
    target = ENDED.get(known) if known else None
    if target is None:
        return Outcome(Result.IGNORED, run.run_id, run.state, f"unknown status {status!r}")
    if run.state in (State.SUBMITTED, State.RUNNING):
        outcome = _move(ctx, run, target, status, error)
        if target != State.SUCCEEDED:
            current = ctx.ledger.get(run.run_id)
            if current is not None and current.state == target:
                ctx.alert(current, f"job.{target.value}", "error",
                          f"fine-tune job {run.job_name} ended {status}" + (f": {error}" if error else ""))
            return outcome
    current = ctx.ledger.get(run.run_id) or run
    if current.state in (State.SUCCEEDED, State.REGISTERED):
        final = deploy.advance(ctx, current)
        return Outcome(Result.ADVANCED, run.run_id, final.state)
    log.debug("ignored %s for run %s in state %s", status, run.run_id, current.state)
    return Outcome(Result.IGNORED, run.run_id, current.state, f"late {status}")


def _move(ctx: Context, run: Run, to: State, status: str, error: str = "") -> Outcome:
    try:
        if error:
            ctx.ledger.advance(run, to, note=f"job {status}", error=error)
        else:
            ctx.ledger.advance(run, to, note=f"job {status}")
    except IllegalTransition:
        return Outcome(Result.IGNORED, run.run_id, run.state, f"cannot go {run.state} -> {to}")
    except Conflict:  # another handler moved it first, which is fine
        return Outcome(Result.IN_PROGRESS, run.run_id, run.state, "moved by another handler")
    return Outcome(Result.ADVANCED, run.run_id, to, f"job {status}")
