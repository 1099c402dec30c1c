"""The handlers: pure orchestration over the ports. Triggers (functions/) and the devhost call these.

    upload.py       on_upload: validate, split, stage, submit (or quarantine)
    job_status.py   on_job_event: a job's status moves its run; success goes on to deploy
    deploy.py       register, deploy at 0 %, gate, switch traffic, roll back
    gate.py         the deploy gate: smoke test and eval score
    reconcile.py    runs whose events were lost, or whose handler died mid-step
    sweep.py        on_sweep: tear down idle endpoints (the rules in shared/idle.py)
    outcome.py      what a handler did, as a typed value
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.alerts import Alerts
from shared.events import RunEvent
from shared.lifecycle import deploy, job_status, reconcile, sweep, upload
from shared.lifecycle.context import Context
from shared.lifecycle.outcome import Outcome, Result
from shared.lifecycle.sweep import SweepReport
from shared.observability import handling
from shared.platforms.port import Platform
from shared.runs import IllegalTransition, Ledger, Run, State, can_redeploy, can_retry
from shared.settings import Settings
from shared.staging import BlobRef, BlobStore

__all__ = ["Lifecycle", "Outcome", "Result", "SweepReport"]


class Lifecycle:
    """Upload → job → model → endpoint → teardown, one handler per trigger."""

    def __init__(self, settings: Settings, platform: Platform, ledger: Ledger, alerts: Alerts,
                 staging: BlobStore, *, close: Callable[[], None] | None = None) -> None:
        self.ctx = Context(settings, platform, ledger, alerts, staging)
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

    def on_job_event(self, event: RunEvent) -> Outcome:
        """An Azure ML run event (RunCompleted / RunStatusChanged) about one of the jobs."""
        with handling(job_id=event.job_name):
            return job_status.on_job_event(self.ctx, event)

    def on_sweep(self, now: datetime | None = None) -> SweepReport:
        """The timer: finish runs whose events were lost, then tear down idle endpoints."""
        with handling():
            report = SweepReport(reconciled=reconcile.reconcile(self.ctx, now))
            return sweep.on_sweep(self.ctx, now, report)

    def redeploy(self, run: Run) -> Run | None:
        """Deploy a torn-down or rolled-back run's registered model again (one step: it stays registered).

        None if another handler holds the run's deploy step.
        """
        if not can_redeploy(run):
            raise IllegalTransition(f"run {run.run_id} is {run.state}; only torn-down or rolled-back runs "
                                    "with a registered model can be redeployed")
        with handling(run_id=run.run_id, job_id=run.job_name):
            return deploy.deploy(self.ctx, run)

    def retry(self, run: Run) -> Outcome:
        """Submit a failed or canceled run's staged data again, as a new job."""
        if not can_retry(run):
            raise IllegalTransition(f"run {run.run_id} is {run.state}; only failed or canceled runs with "
                                    "staged data can be retried")
        attempt = run.attempt + 1
        with handling(run_id=run.run_id, job_id=run.job_name):
            again = self.ctx.ledger.advance(run, State.VALIDATED, note=f"retry #{attempt}", attempt=attempt)
            return upload.submit(self.ctx, again)

    def close(self) -> None:
        """Stop what the platform runs on this machine for this process (the local engine's servers)."""
        if self._close is not None:
            self._close()
