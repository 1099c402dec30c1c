"""The reconciler: finishes runs whose job events never came, and re-queues runs whose step message was lost.

Azure ML may send no event for a failed or canceled run, and Event Grid gives up after 24 hours; a handler
can die between recording a step and queueing the next one. Each sweep looks at runs that have been quiet
longer than RECONCILE_AFTER with no live lease: a job is polled and its status applied as an event would; a
run waiting for a step gets that step's message again (the step machine drops it if it turns out to be a
duplicate). Nothing long runs here: the timer only reads and queues.
"""

from __future__ import annotations

from datetime import datetime

from shared.lifecycle import job_status, run_plan
from shared.lifecycle.context import Context, log
from shared.lifecycle.outcome import Outcome, Result
from shared.platforms.port import NotFoundError, PlatformError
from shared.runs import Run, State

_WAITING_ON_JOB = (State.SUBMITTED, State.RUNNING)
_WAITING_ON_STEP = (State.VALIDATED, State.SUCCEEDED, State.REGISTERED, State.DEPLOYING)


def reconcile(ctx: Context, now: datetime | None = None) -> list[Outcome]:
    """Advance every run that has been quiet too long; returns what happened to each run it touched."""
    now = now or ctx.ledger.now()
    outcomes = []
    for run in ctx.ledger.find(state=(*_WAITING_ON_JOB, *_WAITING_ON_STEP)):
        if run.lease_live(now) or not _quiet(run, now, ctx):
            continue
        try:
            outcome = _advance(ctx, run)
        except PlatformError as exc:
            outcome = Outcome(Result.IN_PROGRESS, run.run_id, run.state,
                              f"could not poll ({exc}); will try next sweep")
        except Exception as exc:  # one bad run must not stop the others being reconciled
            outcome = _isolated(ctx, run, exc)
        if outcome is not None:
            log.info("reconciled %s", outcome)
            outcomes.append(outcome)
    return outcomes + run_plan.expire_waiting(ctx, now)  # manifests whose files never came


def _isolated(ctx: Context, run: Run, exc: Exception) -> Outcome:
    log.exception("reconciling run %s failed; the sweep goes on with the others", run.run_id)
    detail = f"reconcile failed: {type(exc).__name__}: {str(exc)[:300]}"
    try:
        ctx.alert(run, "reconcile.failed", "error",
                  f"run {run.run_id} ({run.state}) could not be reconciled: {detail}")
    except Exception:  # the ledger itself may be what is broken; the log has it
        log.exception("could not alert about run %s", run.run_id)
    return Outcome(Result.FAILED, run.run_id, run.state, detail)


def _quiet(run: Run, now: datetime, ctx: Context) -> bool:
    if run.lease_step:  # a lease that has run out: its holder died mid-step
        return True
    return run.updated_at is not None and now - run.updated_at >= ctx.settings.reconcile_after


def _advance(ctx: Context, run: Run) -> Outcome | None:
    if run.state in _WAITING_ON_JOB:
        try:
            job = ctx.call(ctx.platform.job_status, run.job_name)
        except NotFoundError:
            return Outcome(Result.IGNORED, run.run_id, run.state,
                           f"job {run.job_name} is not on the platform")
        if not job.terminal and run.state == State.RUNNING:
            return None
        return job_status.apply_status(ctx, run, job.status, error=job.error or "")
    step = ctx.hand_off(run)  # its message was lost, or its handler died: queue the step again
    return Outcome(Result.QUEUED, run.run_id, run.state, f"{step} queued again") if step else None
