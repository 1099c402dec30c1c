"""The handlers: pure orchestration over the ports. Triggers (functions/) and the devhost call these.

Event and HTTP handlers only record and hand off; the work runs as short steps from the step queue.

    upload.py        on_upload: validate, split, stage, queue the submit step (or quarantine)
    submit.py        the submit step: start the fine-tune job (from the base model or the live one)
    job_status.py    on_job_event: a job's status moves its run; success queues the register step
    step_message.py  the typed step message, and which step a run waits for
    step_machine.py  on_step / on_poison: the table of steps, each run exactly once per message sequence
    register.py      the register step
    deploy.py        the deploy step (begin, never await) and the poll step (growing waits, stuck limit)
    promote.py       the promote step: smoke test and eval gate, traffic 100 %, delete the old deployment
    rollback.py      how a run ends when a step cannot go on: failed or rolled back, one alert
    gate.py          the deploy gate: smoke test and eval score
    reconcile.py     runs whose events or step messages were lost, or whose handler died mid-step
    unseen.py        uploads no trigger handled (event lost, trigger gave up): failed, one alert
    sweep.py         on_sweep: tear down idle endpoints (the rules in shared/idle.py)
    outcome.py       what a handler did, as a typed value
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.alerts import Alerts
from shared.events import RunEvent
from shared.lifecycle import job_status, naming, reconcile, step_machine, sweep, unseen, upload
from shared.lifecycle.context import Context
from shared.lifecycle.outcome import Outcome, Result
from shared.lifecycle.step_message import MalformedStep, Step, StepMessage
from shared.lifecycle.sweep import SweepReport
from shared.observability import handling
from shared.platforms.port import Platform
from shared.projects import endpoint_of, run_project
from shared.queues import MessageQueue
from shared.runs import (
    REDEPLOYABLE,
    RETRYABLE,
    IllegalTransition,
    Ledger,
    Run,
    State,
    can_redeploy,
    can_retry,
)
from shared.runs.record import retry_problem
from shared.settings import Settings
from shared.staging import BlobRef, BlobStore

__all__ = ["Lifecycle", "MalformedStep", "Outcome", "Result", "Step", "StepMessage", "SweepReport"]


class Lifecycle:
    """Upload → job → model → endpoint → teardown, one handler per trigger."""

    def __init__(self, settings: Settings, platform: Platform, ledger: Ledger, alerts: Alerts,
                 staging: BlobStore, steps: MessageQueue, *, close: Callable[[], None] | None = None) -> None:
        self.ctx = Context(settings, platform, ledger, alerts, staging, steps)
        self._close = close

    @property
    def ledger(self) -> Ledger:
        return self.ctx.ledger

    @property
    def platform(self) -> Platform:
        return self.ctx.platform

    def on_upload(self, blob: BlobRef) -> Outcome:
        """A blob arrived in the incoming container."""
        with handling():
            return upload.on_upload(self.ctx, blob)

    def on_upload_failed(self, blob: BlobRef, etag: str, reason: str) -> Outcome:
        """An upload its blob trigger gave up on, or that was never handled: a failed run, one alert."""
        with handling():
            return upload.on_upload_failed(self.ctx, blob, etag, reason)

    def on_job_event(self, event: RunEvent) -> Outcome:
        """An Azure ML run event (RunCompleted / RunStatusChanged) about one of the jobs."""
        with handling(job_id=event.job_name):
            return job_status.on_job_event(self.ctx, event)

    def on_step(self, message: StepMessage, dequeue_count: int = 1) -> Outcome:
        """A step message from the step queue (`dequeue_count`: how many times it has been delivered)."""
        with handling(run_id=message.run_id):
            return step_machine.on_step(self.ctx, message, dequeue_count)

    def on_poison(self, message: StepMessage) -> Outcome:
        """A step message that failed on every delivery: its run ends failed, with one alert."""
        with handling(run_id=message.run_id):
            return step_machine.on_poison(self.ctx, message)

    def on_sweep(self, now: datetime | None = None) -> SweepReport:
        """The timer: re-queue runs whose events or steps were lost, then tear down idle endpoints."""
        with handling():
            reconciled = [*reconcile.reconcile(self.ctx, now), *unseen.check(self.ctx, now)]
            report = SweepReport(reconciled=reconciled)
            return sweep.on_sweep(self.ctx, now, report)

    def redeploy(self, run: Run, *, wake: bool = False) -> Run:
        """Ask for a torn-down, rolled-back, superseded or unhealthy run's registered model to be deployed
        again; returns the run, now deploying, with its deploy step queued. It goes back to the endpoint the
        run served on. `wake`: a request through the front door asked for it (counted in the run's `wakes`).

        Raises IllegalTransition if the run's state does not allow it, Conflict if the run changed meanwhile.
        """
        if not can_redeploy(run):
            accepted = ", ".join(sorted(state.value for state in REDEPLOYABLE))
            raise IllegalTransition(f"run {run.run_id} is {run.state}; only runs that are {accepted} with "
                                    "a registered model can be redeployed")
        with handling(run_id=run.run_id, job_id=run.job_name):
            endpoint = run.endpoint or endpoint_of(self.ctx.settings, run_project(self.ctx.settings, run))
            asked = self.ctx.ledger.advance(run, State.DEPLOYING, note="woken by a request" if wake
                                            else "redeploy requested", wakes=run.wakes + int(wake),
                                            endpoint=endpoint, deployment=naming.deployment_name(run.run_id),
                                            error="",
                                            deploy_started_at=None, provisioning="", polls=0,
                                            redeploys=run.redeploys + 1, step_seq=run.step_seq + 1)
            self.ctx.hand_off(asked)
            return asked

    def retry(self, run: Run) -> Run:
        """Ask for a failed or canceled run's staged data to be submitted again, as a new job; returns the
        run, validated again, with its submit step queued."""
        if not can_retry(run):
            why = retry_problem(run) if run.state in RETRYABLE else None
            raise IllegalTransition(f"run {run.run_id} cannot be retried: {why}" if why else
                                    f"run {run.run_id} is {run.state}; only failed or canceled runs with "
                                    "staged data can be retried")
        attempt = run.attempt + 1
        with handling(run_id=run.run_id, job_id=run.job_name):
            again = self.ctx.ledger.advance(run, State.VALIDATED, note=f"retry #{attempt}", attempt=attempt,
                                            error="", step_seq=run.step_seq + 1)
            self.ctx.hand_off(again)
            return again

    def close(self) -> None:
        """Stop what the platform runs on this machine for this process (the local engine's servers)."""
        if self._close is not None:
            self._close()
