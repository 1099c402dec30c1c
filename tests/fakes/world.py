"""The whole lifecycle on the in-memory backends: ledger, staging, step queue and platform in process, alerts
in a file.

Each backend passes the same contract suite as its real counterpart (tests/contract/), so a lifecycle test
here says what the app does, in milliseconds; the integration tier runs the same handlers on Azurite. The step
queue is driven by the devhost's QueueHost, the Functions host's rules (retries, poison after
maxDequeueCount), and `drain` moves the world's clock to each delayed message instead of waiting for it.

    world = MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="2")
    world.life.on_upload(world.drop("chats.jsonl"))
    world.drain()
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devhost.queues import QueueHost, QueueOptions
from shared.azurite import DEVELOPMENT_STORAGE
from shared.events import RunEvent
from shared.lifecycle import Lifecycle, Outcome, StepMessage
from shared.platforms.memory import InMemoryPlatform
from shared.queues import Delivery, poison_queue_name
from shared.queues.memory import InMemoryQueue
from shared.runs import Ledger, Run, State
from shared.runs.memory import InMemoryRowStore
from shared.settings import Settings
from shared.staging import BlobRef
from shared.staging.memory import InMemoryBlobStore
from shared.wiring import build_lifecycle

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"


class Killed(BaseException):
    """A handler's worker dying mid-step: nothing of the step's own cleanup runs, the message stays taken."""


@dataclass(frozen=True)
class Invocation:
    """One run of the steps (or poison) function: what it got, what it did, how long it took (wall time)."""

    message: StepMessage
    dequeue_count: int
    outcome: Outcome | None
    seconds: float


class MemoryWorld:
    """One app instance over in-memory backends. `now` (if given) is the base clock of ledger, platform and
    queue; `drain` moves all of them forward together."""

    def __init__(self, data_dir: Path, *, now: Callable[[], datetime] | None = None,
                 provisioning_time: timedelta = timedelta(minutes=2),
                 function_timeout: timedelta | None = None, **env: str) -> None:
        self.settings = Settings.from_env({"AUTOPILOT_STORAGE": DEVELOPMENT_STORAGE,
                                           "AUTOPILOT_DATA_DIR": str(data_dir), **env})
        base = now or (lambda: datetime.now(UTC))
        self.skipped = timedelta(0)
        clock = lambda: base() + self.skipped  # noqa: E731 - the one clock every backend reads
        self.read_clock = clock
        self.platform = InMemoryPlatform(clock=clock, provisioning_time=provisioning_time)
        self.staging = InMemoryBlobStore(clock)
        self.steps = InMemoryQueue(self.settings.step_queue, clock)
        self.poison = InMemoryQueue(poison_queue_name(self.settings.step_queue), clock)
        self.life: Lifecycle = build_lifecycle(self.settings, self.platform,
                                               ledger=Ledger(InMemoryRowStore(), clock=clock),
                                               staging=self.staging, steps=self.steps)
        self.waits: list[float] = []  # the platform retries' backoff, recorded instead of slept
        self.life.ctx.sleep = self.waits.append
        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()
        options = QueueOptions(visibility_timeout=timedelta(minutes=1))
        # `function_timeout` (wall time) fails and abandons a step still running then, as the host does.
        self.step_host = QueueHost(self.steps, self.poison, self._invoke(self.life.on_step), options,
                                   timeout=function_timeout)
        self.poison_host = QueueHost(self.poison, None, self._invoke(
            lambda message, _: self.life.on_poison(message)), options, timeout=function_timeout)

    @property
    def ledger(self) -> Ledger:
        return self.life.ledger

    def drain(self, *, until: Callable[[], bool] | None = None, workers: int = 1, limit: int = 1000) -> None:
        """Run queued steps (and poisoned ones) as the host would, `workers` at a time, skipping the clock to
        each delayed message, until both queues are empty or `until()` holds. A Killed invocation leaves its
        message taken, so it comes back when the host's hold on it runs out."""
        for _ in range(limit):
            if until is not None and until():
                return
            batch = [(self.step_host, d) for d in self.step_host.receive(workers)]
            batch += [(self.poison_host, d) for d in self.poison_host.receive(workers - len(batch))]
            if not batch:
                later = [t for t in (self.steps.next_visible_at(), self.poison.next_visible_at()) if t]
                if not later:
                    return
                self.skipped += max(min(later) - self.read_clock(), timedelta(0)) + timedelta(milliseconds=1)
                continue
            threads = [threading.Thread(target=self._deliver, args=item) for item in batch]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        raise AssertionError(f"the step queue did not drain in {limit} rounds: {self.steps.texts()}")

    def queued(self) -> list[StepMessage]:
        """The step messages waiting (visible or not), oldest first."""
        return [StepMessage.decode(text) for text in self.steps.texts()]

    def _deliver(self, host: QueueHost, delivery: Delivery) -> None:
        with contextlib.suppress(Killed):
            host.deliver(delivery)

    def _invoke(self, handle: Callable[[StepMessage, int], Outcome]) -> Callable[[Delivery], None]:
        def run(delivery: Delivery) -> None:
            message = StepMessage.decode(delivery.text)
            started = time.perf_counter()
            outcome: Outcome | None = None
            try:
                outcome = handle(message, delivery.dequeue_count)
            finally:
                with self._lock:
                    self.invocations.append(Invocation(message, delivery.dequeue_count, outcome,
                                                       time.perf_counter() - started))
        return run

    def drop(self, name: str, data: bytes | None = None, **metadata: str) -> BlobRef:
        """An upload lands in the incoming container (the sample chat data unless `data` is given)."""
        blob = BlobRef(self.settings.incoming_container, name)
        self.staging.put(blob, SAMPLE.read_bytes() if data is None else data, "application/jsonl", metadata)
        return blob

    def upload(self, name: str, data: bytes | None = None, **metadata: str) -> Run:
        """Drop the file, let the blob trigger and the submit step run: the run, submitted."""
        self.life.on_upload(self.drop(name, data, **metadata))
        self.drain()
        return self.run_of(name)

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

    def complete(self, run: Run) -> None:
        """The run's job completes and its event arrives; the steps run until the queue is empty."""
        self.platform.finish(run.job_name)
        self.life.on_job_event(self.event(run, "Completed"))
        self.drain()

    def live_run(self, name: str = "a.jsonl", data: bytes | None = None) -> Run:
        """Upload → job completes → live, through the handlers and the step queue."""
        run = self.upload(name, data)
        self.complete(run)
        live = self.get(run.run_id)
        assert live.state == State.LIVE, live
        return live
