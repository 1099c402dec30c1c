"""on_job_event: a job's status (from an Azure ML run event, or the reconciler's poll) moves its run forward.

Events arrive twice, late or out of order, and pipeline step runs send their own. Anything that does not
move one of our runs forward along the state machine is acknowledged and ignored, with a debug line. A handler
only records the status and, for a completed job, queues the register step: it answers in milliseconds, well
inside Event Grid's 30 s, and the long work (register, deploy, gate) runs on the step queue.
"""

from __future__ import annotations

from shared.events import RunEvent
from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.platforms.port import ACTIVE_STATUSES, JobStatus, PlatformError
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
        if _move(ctx, run, State.RUNNING, status) is None:
            return Outcome(Result.IN_PROGRESS, run.run_id, run.state, "moved by another handler")
        return Outcome(Result.ADVANCED, run.run_id, State.RUNNING, f"job {status}")
    target = ENDED.get(known) if known else None
    if target is None:
        return Outcome(Result.IGNORED, run.run_id, run.state, f"unknown status {status!r}")
    if run.state not in (State.SUBMITTED, State.RUNNING):
        log.debug("ignored %s for run %s in state %s", status, run.run_id, run.state)
        return Outcome(Result.IGNORED, run.run_id, run.state, f"late {status}")
    if target != State.SUCCEEDED and not error:
        error = _job_error(ctx, run)  # an event says only "Failed"; the why is on the job
    moved = _move(ctx, run, target, status, error)
    if moved is not None and target == State.SUCCEEDED:
        ctx.hand_off(moved)
        return Outcome(Result.QUEUED, run.run_id, target, f"job {status}; register queued")
    if target != State.SUCCEEDED:
        # Alert from whichever handler sees the run ended (the ledger sends it once), so a mover that died
        # between recording and alerting is covered by the next delivery.
        ended = moved or ctx.ledger.get(run.run_id)
        if ended is not None and ended.state == target:
            ctx.alert(ended, f"job.{target.value}", "error",
                      f"fine-tune job {run.job_name} ended {status}" + (f": {error}" if error else ""))
    if moved is None:
        return Outcome(Result.IN_PROGRESS, run.run_id, run.state, "moved by another handler")
    return Outcome(Result.ADVANCED, run.run_id, target, f"job {status}")


def _job_error(ctx: Context, run: Run) -> str:
    """The platform's reason a job ended badly, or '' if it cannot say."""
    try:
        return ctx.call(ctx.platform.job_status, run.job_name).error or ""
    except PlatformError as exc:
        log.warning("run %s: could not read why job %s ended: %s", run.run_id, run.job_name, exc)
        return ""


def _move(ctx: Context, run: Run, to: State, status: str, error: str = "") -> Run | None:
    """The run moved to `to`; None if another handler moved it first (which is fine)."""
    if to in (State.FAILED, State.CANCELED) and not error:  # a run that ended badly always says why
        error = f"job {run.job_name} ended {status} (the platform gave no reason)"
    def move(current: Run) -> Run | None:
        try:
            if error:
                return ctx.ledger.advance(current, to, note=f"job {status}", error=error)
            return ctx.ledger.advance(current, to, note=f"job {status}")
        except IllegalTransition:  # moved on by another handler (e.g. already `to`)
            return None

    try:
        return ctx.ledger.retry_on_conflict(run, move)
    except Conflict:
        return None
