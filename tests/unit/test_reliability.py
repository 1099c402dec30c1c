"""Exactly-once effects under at-least-once triggers: duplicates, concurrency, disorder, loss, faults.

The whole lifecycle runs on the in-memory backends (each held to its real counterpart's contract), so these
run in milliseconds; tests/integration/test_lifecycle_storage.py runs the same handlers on Azurite. Event
handlers only record and queue; `world.drain(workers=N)` runs the step queue as the Functions host would, N
invocations at once. The platform counts what really happened; counts are asserted at the platform and the
alert sink.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.events import RunEvent
from shared.lifecycle import Result
from shared.runs import State
from shared.wiring import build_lifecycle
from tests.fakes.world import SAMPLE, MemoryWorld


@pytest.fixture
def world(tmp_path: Path) -> MemoryWorld:
    return MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="2", RECONCILE_AFTER="0s")


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


def test_twenty_concurrent_deliveries_make_one_job_one_model_one_deployment(world: MemoryWorld) -> None:
    upload = world.drop("chat.jsonl")
    outcomes = concurrently(20, lambda: world.life.on_upload(upload))
    assert [o.result for o in outcomes].count(Result.QUEUED) == 1
    assert {o.result for o in outcomes} <= {Result.QUEUED, Result.IN_PROGRESS, Result.ALREADY_HANDLED}
    world.drain(workers=20)
    assert world.platform.effects["submit"] == 1
    run = world.run()
    world.platform.finish(run.job_name)
    concurrently(20, lambda: world.life.on_job_event(world.event(run, "Completed")))
    world.drain(workers=20)
    assert world.platform.effects["register"] == 1
    assert world.platform.effects["deploy"] == 1
    assert world.platform.effects["set_traffic"] == 1
    assert world.get(run.run_id).state == State.LIVE
    assert world.alerts() == []


def test_twenty_concurrent_failed_events_alert_once(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name, "Failed")
    concurrently(20, lambda: world.life.on_job_event(world.event(run, "Failed")))
    assert world.alerts() == ["job.failed"]
    assert world.get(run.run_id).state == State.FAILED


@pytest.mark.parametrize("late", ["Running", "Completed", "Failed", "Queued"])
def test_late_events_after_completion_change_nothing(world: MemoryWorld, late: str) -> None:
    live = world.live_run()
    effects = dict(world.platform.effects)
    outcome = world.life.on_job_event(world.event(live, late))
    assert (outcome.result, outcome.state) == (Result.IGNORED, State.LIVE)
    after = world.get(live.run_id)
    assert after.state == State.LIVE and after.history == live.history
    assert dict(world.platform.effects) == effects and world.alerts() == []


def test_running_after_completed_event_arrives_out_of_order(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name)
    done = world.life.on_job_event(world.event(run, "Completed"))
    assert (done.result, done.state) == (Result.QUEUED, State.SUCCEEDED)
    late = world.life.on_job_event(world.event(run, "Running"))
    assert (late.result, late.state) == (Result.IGNORED, State.SUCCEEDED)
    world.drain()
    assert world.get(run.run_id).state == State.LIVE


def test_status_words_in_any_case_count(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name, "Failed")
    outcome = world.life.on_job_event(world.event(run, "failed"))  # as some Azure ML samples spell it
    assert (outcome.result, outcome.state) == (Result.ADVANCED, State.FAILED)


def test_unknown_jobs_and_step_runs_are_ignored(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    step = RunEvent("e", "", "", f"{run.job_name}_step_finetune", "x", "azureml.StepRun", "Completed")
    outcome = world.life.on_job_event(step)
    assert outcome.result is Result.IGNORED and outcome.run_id == ""
    assert world.get(run.run_id).state == State.SUBMITTED


def test_lost_completed_event_is_finished_by_the_next_sweep(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name)  # ... and no event ever arrives
    report = world.life.on_sweep()
    assert [(o.run_id, o.result) for o in report.reconciled] == [(run.run_id, Result.QUEUED)]
    world.drain()
    assert world.get(run.run_id).state == State.LIVE and world.platform.effects["deploy"] == 1


def test_a_lost_step_message_is_queued_again_by_the_sweep(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name)
    world.life.on_job_event(world.event(run, "Completed"))
    world.steps.receive(10, timedelta(days=7))  # taken by a host that dies, and never comes back in time
    report = world.life.on_sweep()
    assert [(o.run_id, o.detail) for o in report.reconciled] == [(run.run_id, "register queued again")]
    world.drain(until=lambda: world.get(run.run_id).state == State.LIVE)
    assert world.platform.effects["register"] == 1 and world.platform.effects["deploy"] == 1


def test_lost_failed_event_alerts_through_the_reconciler(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name, "Canceled")
    world.life.on_sweep()
    world.life.on_sweep()
    assert world.get(run.run_id).state == State.CANCELED
    assert world.alerts() == ["job.canceled"]


def test_transient_platform_errors_are_retried_to_completion(world: MemoryWorld) -> None:
    for operation in ("submit", "register", "begin_deployment", "score", "set_traffic"):
        world.platform.fail(operation, times=2)
    live = world.live_run()
    assert live.model_version == "1" and world.platform.effects["deploy"] == 1 and world.alerts() == []
    assert len(world.waits) == 10 and world.waits[:2] == [0.5, 1.0]  # two backed-off retries per call


def test_permanent_submit_error_fails_once_and_keeps_the_upload(world: MemoryWorld) -> None:
    world.platform.fail("submit", permanent=True)
    upload = world.drop("chat.jsonl")
    first = world.life.on_upload(upload)
    world.drain()
    again = world.life.on_upload(upload)
    world.drain()
    assert (first.result, again.result) == (Result.QUEUED, Result.ALREADY_HANDLED)
    assert world.platform.effects["submit"] == 0
    assert world.run().state == State.FAILED and world.alerts() == ["job.submit_failed"]
    assert world.staging.properties(upload) is not None


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
                                               ("worse_than_base", "deploy.base_gate_failed"),
                                               ("deploy_error", "deploy.failed")])
def test_failed_second_deployment_rolls_back_and_old_one_keeps_serving(world: MemoryWorld, fault: str,
                                                                       alert: str) -> None:
    first = world.live_run("first.jsonl")
    answers = known_answers()

    def reply(deployment: str, payload: Any) -> Any:
        if deployment == first.deployment:  # the live model answers like the data it was trained on
            return {"output": answers.get(payload["input_data"]["input_string"][-1]["content"], "ok")}
        return {"output": "" if fault == "empty_reply" else "zzz"}

    world.platform.reply = reply
    if fault == "deploy_error":
        world.platform.script_deployment("Failed", error="OutOfQuota: not enough quota for the instance type")
    second = world.upload("second.jsonl", second_dataset())
    # What the job's evaluation measured: the fine-tune made the held-out loss worse than the base model's.
    figures = {"base_eval_loss": 2.0, "eval_loss": 2.5} if fault == "worse_than_base" else {}
    world.platform.finish(second.job_name, metrics=figures)
    world.life.on_job_event(world.event(second, "Completed"))
    world.life.on_job_event(world.event(second, "Completed"))
    world.drain()

    assert world.get(second.run_id).state == State.ROLLED_BACK
    assert world.get(first.run_id).state == State.LIVE
    assert world.platform.live_deployment(first.endpoint) == first.deployment
    info = world.platform.get_endpoint(first.endpoint)
    assert info is not None and info.deployments == (first.deployment,)
    question = [{"role": "user", "content": "What does error E7 mean?"}]
    answer = world.platform.score(first.endpoint, {"input_data": {"input_string": question}})
    assert "E7 means the main brush is jammed" in answer["output"]
    assert world.alerts() == [alert]
    if fault == "worse_than_base":
        assert world.platform.effects["deploy"] == 1, "a candidate worse than its base is never deployed"
        assert "0.500 above the base model's 2.000" in world.get(second.run_id).error


def test_a_redeploy_goes_back_to_the_endpoint_the_run_served_on(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="1", ENDPOINT_NAME="ep-first")
    live = world.live_run()
    world.life.on_sweep(world.ledger.now() + world.settings.idle_ttl * 2)
    down = world.get(live.run_id)
    asleep = world.platform.get_endpoint("ep-first")  # its deployment deleted; the endpoint stays
    assert down.state == State.TORN_DOWN and asleep is not None and asleep.deployments == ()
    # The app's endpoint setting changed since; the run's own endpoint is the one its clients know.
    moved = build_lifecycle(replace(world.settings, endpoint_name="ep-second"), world.platform,
                            ledger=world.ledger, staging=world.staging, steps=world.steps)
    asked = moved.redeploy(down)
    assert asked.state == State.DEPLOYING and asked.endpoint == "ep-first"
    world.drain()
    back = world.get(live.run_id)
    assert back.state == State.LIVE and back.endpoint == "ep-first"
    assert world.platform.get_endpoint("ep-second") is None
