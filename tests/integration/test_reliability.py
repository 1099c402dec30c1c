"""Exactly-once effects under at-least-once triggers: duplicates, concurrency, disorder, loss, faults.

The ledger, blobs and alerts are real (Azurite, a JSONL alert sink); the platform is the in-memory fake,
which counts what really happened. Counts are asserted at the platform and the alert sink.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from shared.events import RunEvent
from shared.ledger import Ledger, Run, State
from shared.lifecycle import Lifecycle, Upload
from shared.settings import Settings
from shared.wiring import build_lifecycle
from tests.fakes.platform import InMemoryPlatform

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"
pytestmark = pytest.mark.integration


class World:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.platform = InMemoryPlatform()
        self.life: Lifecycle = build_lifecycle(settings, platform=self.platform)

    def drop(self, name: str, data: bytes | None = None) -> Upload:
        container = self.life.ctx.blobs.get_container_client(self.settings.incoming_container)
        if not container.exists():
            container.create_container()
        container.upload_blob(name, data if data is not None else SAMPLE.read_bytes(), overwrite=True)
        return Upload(self.settings.incoming_container, name)

    def run(self) -> Run:
        runs = [r for r in self.life.ledger.all() if r.run_id.startswith("run-")]
        assert len(runs) == 1, runs
        return runs[0]

    def event(self, run: Run, status: str) -> RunEvent:
        return RunEvent(id="e", event_type="", subject="", run_id=run.job_name, experiment_name="x",
                        run_type="azureml.PipelineRun", run_status=status)

    def alerts(self) -> list[str]:
        path = self.settings.data_dir / "alerts.jsonl"
        return [json.loads(line)["alert_class"] for line in path.read_text().splitlines()] \
            if path.exists() else []

    def live_run(self, name: str = "a.jsonl", data: bytes | None = None) -> Run:
        self.life.on_upload(self.drop(name, data))
        run = next(r for r in self.life.ledger.find(upload=f"{self.settings.incoming_container}/{name}"))
        self.platform.finish(run.job_name)
        self.life.on_job_event(self.event(run, "Completed"))
        live = self.life.ledger.get(run.run_id)
        assert live is not None and live.state == State.LIVE, live
        return live


@pytest.fixture
def world(settings_env: dict[str, str]) -> Iterator[World]:
    env = {**settings_env, "SMOKE_CONVERSATIONS": "2", "RECONCILE_AFTER": "0s"}
    yield World(Settings.from_env(env))


def concurrently(times: int, action: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(times)
    results: list[Any] = []
    errors: list[BaseException] = []

    def go() -> None:
        barrier.wait()
        try:
            results.append(action())
        except BaseException as exc:  # collected and re-raised below, so no thread dies silently
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(times)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_twenty_concurrent_deliveries_make_one_job_one_model_one_deployment(world: World) -> None:
    upload = world.drop("chat.jsonl")
    concurrently(20, lambda: world.life.on_upload(upload))
    assert world.platform.effects["submit"] == 1
    run = world.run()
    world.platform.finish(run.job_name)
    concurrently(20, lambda: world.life.on_job_event(world.event(run, "Completed")))
    assert world.platform.effects["register"] == 1
    assert world.platform.effects["deploy"] == 1
    assert world.platform.effects["set_traffic"] == 1
    assert world.life.ledger.get(run.run_id).state == State.LIVE  # type: ignore[union-attr]
    assert world.alerts() == []


def test_twenty_concurrent_failed_events_alert_once(world: World) -> None:
    world.life.on_upload(world.drop("chat.jsonl"))
    run = world.run()
    world.platform.finish(run.job_name, "Failed")
    concurrently(20, lambda: world.life.on_job_event(world.event(run, "Failed")))
    assert world.alerts() == ["job.failed"]
    assert world.life.ledger.get(run.run_id).state == State.FAILED  # type: ignore[union-attr]


@pytest.mark.parametrize("late", ["Running", "Completed", "Failed", "Queued"])
def test_late_events_after_completion_change_nothing(world: World, late: str) -> None:
    live = world.live_run()
    effects = dict(world.platform.effects)
    world.life.on_job_event(world.event(live, late))
    after = world.life.ledger.get(live.run_id)
    assert after is not None and after.state == State.LIVE and after.history == live.history
    assert dict(world.platform.effects) == effects and world.alerts() == []


def test_running_after_completed_event_arrives_out_of_order(world: World) -> None:
    world.life.on_upload(world.drop("chat.jsonl"))
    run = world.run()
    world.platform.finish(run.job_name)
    world.life.on_job_event(world.event(run, "Completed"))
    world.life.on_job_event(world.event(run, "Running"))
    assert world.life.ledger.get(run.run_id).state == State.LIVE  # type: ignore[union-attr]


def test_unknown_jobs_and_step_runs_are_ignored(world: World) -> None:
    world.life.on_upload(world.drop("chat.jsonl"))
    run = world.run()
    step = RunEvent("e", "", "", f"{run.job_name}_step_finetune", "x", "azureml.StepRun", "Completed")
    assert world.life.on_job_event(step).startswith("ignored")
    assert world.life.ledger.get(run.run_id).state == State.SUBMITTED  # type: ignore[union-attr]


def test_lost_completed_event_is_finished_by_the_next_sweep(world: World) -> None:
    world.life.on_upload(world.drop("chat.jsonl"))
    run = world.run()
    world.platform.finish(run.job_name)  # ... and no event ever arrives
    report = world.life.on_sweep()
    assert report["reconciled"] and world.life.ledger.get(run.run_id).state == State.LIVE  # type: ignore[union-attr]
    assert world.platform.effects["deploy"] == 1


def test_lost_failed_event_alerts_through_the_reconciler(world: World) -> None:
    world.life.on_upload(world.drop("chat.jsonl"))
    run = world.run()
    world.platform.finish(run.job_name, "Canceled")
    world.life.on_sweep()
    world.life.on_sweep()
    assert world.life.ledger.get(run.run_id).state == State.CANCELED  # type: ignore[union-attr]
    assert world.alerts() == ["job.canceled"]


def test_transient_platform_errors_are_retried_to_completion(world: World) -> None:
    for operation in ("submit", "register", "deploy", "score", "set_traffic"):
        world.platform.fail(operation, times=2)
    live = world.live_run()
    assert live.model_version == "1" and world.platform.effects["deploy"] == 1 and world.alerts() == []


class FlakyTransport(RequestsTransport):
    """Drops every third write to the table service, as a flaky network would."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.dropped = 0

    def send(self, request: Any, **kwargs: Any) -> Any:
        if request.method in ("PUT", "POST", "MERGE", "PATCH"):
            self.writes += 1
            if self.writes % 3 == 0:
                self.dropped += 1
                raise ServiceResponseError("connection reset (injected)")
        return super().send(request, **kwargs)


def test_transient_ledger_write_errors_are_retried_by_the_sdk(world: World) -> None:
    transport = FlakyTransport()
    service = TableServiceClient.from_connection_string(
        world.settings.storage.connection_string or "", transport=transport, retry_backoff_factor=0.01)
    world.life.ctx.ledger = Ledger(service, world.settings.ledger_table)
    live = world.live_run()
    assert transport.dropped >= 2 and live.state == State.LIVE


def test_permanent_submit_error_fails_once_and_keeps_the_upload(world: World) -> None:
    world.platform.fail("submit", permanent=True)
    upload = world.drop("chat.jsonl")
    world.life.on_upload(upload)
    world.life.on_upload(upload)
    assert world.run().state == State.FAILED and world.alerts() == ["job.submit_failed"]
    incoming = world.life.ctx.blobs.get_blob_client(upload.container, upload.name)
    assert incoming.exists()


def known_answers() -> dict[str, str]:
    """Each user turn of the sample data mapped to the assistant turn that follows it."""
    answers = {}
    for line in SAMPLE.read_text().splitlines():
        messages = json.loads(line)["messages"]
        for asked, answered in itertools.pairwise(messages):
            if asked["role"] == "user" and answered["role"] == "assistant":
                answers[asked["content"]] = answered["content"]
    return answers


def second_dataset() -> bytes:
    return b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:40])


@pytest.mark.parametrize(("fault", "alert"), [("empty_reply", "deploy.smoke_gate_failed"),
                                               ("worse_reply", "deploy.eval_gate_failed"),
                                               ("deploy_error", "deploy.failed")])
def test_failed_second_deployment_rolls_back_and_old_one_keeps_serving(world: World, fault: str,
                                                                       alert: str) -> None:
    first = world.live_run("first.jsonl")
    answers = known_answers()

    def reply(deployment: str, payload: Any) -> Any:
        if deployment == first.deployment:  # the live model answers like the data it was trained on
            return {"output": answers.get(payload["input_data"]["input_string"][-1]["content"], "ok")}
        return {"output": "" if fault == "empty_reply" else "zzz"}

    world.platform.reply = reply
    if fault == "deploy_error":
        world.platform.fail("deploy", permanent=True)
    world.life.on_upload(world.drop("second.jsonl", second_dataset()))
    second = world.life.ledger.find(upload=f"{world.settings.incoming_container}/second.jsonl")[0]
    world.platform.finish(second.job_name)
    world.life.on_job_event(world.event(second, "Completed"))
    world.life.on_job_event(world.event(second, "Completed"))

    assert world.life.ledger.get(second.run_id).state == State.ROLLED_BACK  # type: ignore[union-attr]
    assert world.life.ledger.get(first.run_id).state == State.LIVE  # type: ignore[union-attr]
    assert world.platform.live_deployment(first.endpoint) == first.deployment
    assert list(world.platform.endpoints[first.endpoint]["deployments"]) == [first.deployment]
    question = [{"role": "user", "content": "What is a good backup rule?"}]
    answer = world.platform.score(first.endpoint, {"input_data": {"input_string": question}})
    assert answer["output"].startswith("Keep three copies")
    assert world.alerts() == [alert]
