"""The handlers: pure orchestration over the ports. Triggers (functions/) and the devhost call these."""

from __future__ import annotations

from datetime import datetime

from azure.storage.blob import BlobServiceClient

from shared.alerts import Alerts
from shared.events import RunEvent
from shared.ledger import IllegalTransition, Ledger, Run, State
from shared.lifecycle import deploy, job_events, reconcile, sweep, upload
from shared.lifecycle.context import Context
from shared.lifecycle.manifests import Upload
from shared.observability import handling
from shared.platforms.port import Platform
from shared.settings import Settings

__all__ = ["Lifecycle", "Upload"]


class Lifecycle:
    """Upload → job → model → endpoint → teardown, one handler per trigger."""

    def __init__(self, settings: Settings, platform: Platform, ledger: Ledger, alerts: Alerts,
                 blobs: BlobServiceClient) -> None:
        self.ctx = Context(settings, platform, ledger, alerts, blobs)

    @property
    def ledger(self) -> Ledger:
        return self.ctx.ledger

    @property
    def platform(self) -> Platform:
        return self.ctx.platform

    def on_upload(self, blob: Upload) -> str:
        """A blob arrived in the incoming container."""
        with handling():
            return upload.on_upload(self.ctx, blob)

    def on_job_event(self, event: RunEvent) -> str:
        """An Azure ML run event (RunCompleted / RunStatusChanged)."""
        with handling(job_id=event.run_id):
            return job_events.on_job_event(self.ctx, event)

    def on_sweep(self, now: datetime | None = None) -> dict[str, list[str]]:
        """The timer: finish runs whose events were lost, then tear down idle endpoints."""
        with handling():
            reconciled = reconcile.reconcile(self.ctx, now)
            return {"reconciled": reconciled, **sweep.on_sweep(self.ctx, now)}

    def redeploy(self, run: Run) -> Run | None:
        """Deploy a torn-down or rolled-back run's registered model again (one step: it stays registered)."""
        if run.state not in (State.TORN_DOWN, State.ROLLED_BACK):
            raise IllegalTransition(f"run {run.run_id} is {run.state}; only torn-down or rolled-back runs "
                                    "can be redeployed")
        with handling(run_id=run.run_id, job_id=run.job_name):
            return deploy.deploy(self.ctx, run)

    def retry(self, run: Run) -> str:
        """Submit a failed or canceled run's staged data again, as a new job."""
        if run.state not in (State.FAILED, State.CANCELED) or not run.fields.get("train_uri"):
            raise IllegalTransition(f"run {run.run_id} is {run.state}; only failed or canceled runs with "
                                    "staged data can be retried")
        attempt = int(run.fields.get("attempt", 1)) + 1
        with handling(run_id=run.run_id, job_id=run.job_name):
            again = self.ctx.ledger.advance(run, State.VALIDATED, note=f"retry #{attempt}", attempt=attempt)
            return upload.submit(self.ctx, again)
