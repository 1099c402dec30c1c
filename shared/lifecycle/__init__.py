"""The handlers: pure orchestration over the ports. Triggers (functions/) and the devhost call these."""

from __future__ import annotations

from datetime import datetime

from azure.storage.blob import BlobServiceClient

from shared.alerts import Alerts
from shared.events import RunEvent
from shared.ledger import Ledger, Run
from shared.lifecycle import deploy, job_events, sweep, upload
from shared.lifecycle.context import Context
from shared.lifecycle.upload import Upload
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
        return upload.on_upload(self.ctx, blob)

    def on_job_event(self, event: RunEvent) -> str:
        """An Azure ML run event (RunCompleted / RunStatusChanged)."""
        return job_events.on_job_event(self.ctx, event)

    def on_sweep(self, now: datetime | None = None) -> dict[str, list[str]]:
        """The timer: idle teardown."""
        return sweep.on_sweep(self.ctx, now)

    def redeploy(self, run: Run) -> Run | None:
        """Deploy a torn-down or rolled-back run's registered model again."""
        return deploy.deploy(self.ctx, run)
