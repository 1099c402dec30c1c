"""Handler-time benchmark: what a job event costs the Event Grid-triggered invocation, now and before.

    python bench/handlers.py --events 200

Side by side, on the same machine and backends, with the platform excluded (the in-memory platform, whose
calls cost microseconds and whose deployments are ready at once):
  record+queue  `on_job_event` for a Completed job as it is now: the ledger records the status and the
                register step goes on the step queue (the steps run later, elsewhere);
  inline chain  what the handler did before this change, minus the platform's own time: the same event and
                then every step (register, begin deployment, poll, gate, traffic) in the same invocation.
Both run on Azurite (Table Storage ledger + Storage queue, as on Azure) and on the in-memory backends. Each
event is for a run of its own, submitted beforehand. Prints a table and, last, one JSON line of medians
(ms) and the ratio. Target (issue 12): record+queue median <= 50 ms on Azurite.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devhost import azurite  # noqa: E402
from shared.events import RunEvent  # noqa: E402
from shared.lifecycle import Lifecycle, StepMessage  # noqa: E402
from shared.platforms.memory import InMemoryPlatform  # noqa: E402
from shared.queues import MessageQueue  # noqa: E402
from shared.queues.memory import InMemoryQueue  # noqa: E402
from shared.runs import Ledger, Run, State  # noqa: E402
from shared.runs.memory import InMemoryRowStore  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.staging import BlobRef  # noqa: E402
from shared.staging.memory import InMemoryBlobStore  # noqa: E402
from shared.wiring import build_lifecycle, build_queue  # noqa: E402

SAMPLE = ROOT / "demo" / "sample_chat.jsonl"


def submitted_runs(life: Lifecycle, steps: Callable[[], None], count: int, prefix: str) -> list[Run]:
    """`count` runs, each uploaded and submitted (distinct content, so none is a duplicate)."""
    staging = life.ctx.staging
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    runs = []
    for i in range(count):
        blob = BlobRef(life.ctx.settings.incoming_container, f"{prefix}-{i}.jsonl")
        unique = json.dumps({"messages": [{"role": "user", "content": f"{prefix}{i}"},
                                          {"role": "assistant", "content": "ok"}]}) + "\n"
        staging.put(blob, b"".join(lines[i % 10:]) + unique.encode())
        outcome = life.on_upload(blob)
        steps()
        run = life.ledger.get(outcome.run_id)
        assert run is not None and run.state == State.SUBMITTED, (outcome, run)
        runs.append(run)
    return runs


def event(run: Run) -> RunEvent:
    return RunEvent(id=f"e-{run.job_name}", event_type="", subject="", job_name=run.job_name,
                    experiment_name="x", job_type="azureml.PipelineRun", job_status="Completed")


def drain_inline(life: Lifecycle, queue: MessageQueue) -> Callable[[], None]:
    """Run every queued step now, in this invocation (the old handler's shape)."""
    def run() -> None:
        for _ in range(100):
            got = queue.receive(32, timedelta(minutes=5))
            if not got:
                return
            for delivery in got:
                life.on_step(StepMessage.decode(delivery.text), delivery.dequeue_count)
                queue.delete(delivery)
    return run


def measure(name: str, env: dict[str, str], events: int, storage: bool) -> dict[str, float]:
    settings = Settings.from_env(env)
    platform = InMemoryPlatform(provisioning_time=timedelta(0))
    if storage:
        life = build_lifecycle(settings, platform)
        queue: MessageQueue = build_queue(settings.storage, settings.step_queue)
    else:
        queue = InMemoryQueue(settings.step_queue)
        life = build_lifecycle(settings, platform, ledger=Ledger(InMemoryRowStore()),
                               staging=InMemoryBlobStore(), steps=queue)
    steps = drain_inline(life, queue)
    results: dict[str, float] = {}
    for mode in ("record+queue", "inline chain"):
        runs = submitted_runs(life, steps, events, mode.split()[0].replace("+", "-"))
        for run in runs:
            platform.finish(run.job_name)
        times = []
        for run in runs:
            started = time.perf_counter()
            life.on_job_event(event(run))
            if mode == "inline chain":
                steps()
            times.append((time.perf_counter() - started) * 1000)
            if mode == "record+queue":
                steps()  # not timed: the steps run later, in their own invocations
        results[mode] = statistics.median(times)
        p95 = sorted(times)[int(len(times) * 0.95) - 1]
        print(f"{name:<10} {mode:<13} median {results[mode]:8.2f} ms   p95 {p95:8.2f} ms   n={len(times)}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        base = {"AUTOPILOT_DATA_DIR": str(Path(tmp) / "data"), "SMOKE_CONVERSATIONS": "1",
                "ENDPOINT_NAME": "bench-ep"}
        memory = measure("memory", {**base, "AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"}, args.events,
                         storage=False)
        with azurite.running(Path(tmp) / "azurite", in_memory=True, log=Path(tmp) / "azurite.log") as store:
            on_azurite = measure("azurite", {**base, "AUTOPILOT_STORAGE": store.connection_string},
                                 args.events, storage=True)
    summary = {f"{where}_{mode.replace(' ', '_').replace('+', '_')}_median_ms": round(value, 2)
               for where, figures in (("memory", memory), ("azurite", on_azurite))
               for mode, value in figures.items()}
    summary["azurite_inline_over_queue"] = round(on_azurite["inline chain"] / on_azurite["record+queue"], 1)
    summary["target_met"] = on_azurite["record+queue"] <= 50
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
