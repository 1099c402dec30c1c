"""The whole lifecycle on the in-memory backends: ledger, staging and platform in process, alerts in a file.

Each backend passes the same contract suite as its real counterpart (tests/contract/), so a lifecycle test
here says what the app does, in milliseconds; the integration tier runs the same handlers on Azurite.

    world = MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="2")
    world.life.on_upload(world.drop("chats.jsonl"))
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from shared.events import RunEvent
from shared.lifecycle import Lifecycle
from shared.runs import Ledger, Run, State
from shared.runs.memory import InMemoryRowStore
from shared.settings import DEVELOPMENT_STORAGE, Settings
from shared.staging import BlobRef
from shared.staging.memory import InMemoryBlobStore
from shared.wiring import build_lifecycle
from tests.fakes.platform import InMemoryPlatform

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"


class MemoryWorld:
    """One app instance over in-memory backends. `now` (if given) is the clock of ledger and platform."""

    def __init__(self, data_dir: Path, *, now: Callable[[], datetime] | None = None, **env: str) -> None:
        self.settings = Settings.from_env({"AUTOPILOT_STORAGE": DEVELOPMENT_STORAGE,
                                           "AUTOPILOT_DATA_DIR": str(data_dir), **env})
        clock = now or (lambda: datetime.now(UTC))
        self.platform = InMemoryPlatform(clock=clock)
        self.staging = InMemoryBlobStore()
        self.life: Lifecycle = build_lifecycle(self.settings, self.platform,
                                               ledger=Ledger(InMemoryRowStore(), clock=clock),
                                               staging=self.staging)
        self.waits: list[float] = []  # the platform retries' backoff, recorded instead of slept
        self.life.ctx.sleep = self.waits.append

    @property
    def ledger(self) -> Ledger:
        return self.life.ledger

    def drop(self, name: str, data: bytes | None = None, **metadata: str) -> BlobRef:
        """An upload lands in the incoming container (the sample chat data unless `data` is given)."""
        blob = BlobRef(self.settings.incoming_container, name)
        self.staging.put(blob, SAMPLE.read_bytes() if data is None else data, "application/jsonl", metadata)
        return blob

    def run(self) -> Run:
        """The one run of this world (not counting rejected or duplicate records)."""
        runs = [r for r in self.ledger.all() if r.run_id.startswith("run-")]
        assert len(runs) == 1, runs
        return runs[0]

    def run_of(self, name: str) -> Run:
        (run,) = self.ledger.find(upload=f"{self.settings.incoming_container}/{name}")
        return run

    def get(self, run_id: str) -> Run:
        run = self.ledger.get(run_id)
        assert run is not None, run_id
        return run

    def event(self, run: Run, status: str) -> RunEvent:
        """Azure ML's event for the run's job reaching `status`."""
        return RunEvent(id=f"e-{run.job_name}-{status}", event_type="", subject="", job_name=run.job_name,
                        experiment_name="x", job_type="azureml.PipelineRun", job_status=status)

    def alerts(self) -> list[str]:
        """The alert classes sent so far, in order."""
        path = self.settings.data_dir / "alerts.jsonl"
        return [json.loads(line)["alert_class"] for line in path.read_text().splitlines()] \
            if path.exists() else []

    def live_run(self, name: str = "a.jsonl", data: bytes | None = None) -> Run:
        """Upload → job completes → live, through the handlers."""
        self.life.on_upload(self.drop(name, data))
        run = self.run_of(name)
        self.platform.finish(run.job_name)
        self.life.on_job_event(self.event(run, "Completed"))
        live = self.get(run.run_id)
        assert live.state == State.LIVE, live
        return live
