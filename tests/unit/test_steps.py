"""The step queue: long work leaves the triggers. A deployment is begun, polled (the message comes back later,
each time a little later) and promoted; no invocation waits for it.

The in-memory platform provisions a deployment in `provisioning_time` on the world's clock (2 minutes by
default, Creating until then), as Azure does in 10-20 minutes; `drain` skips the clock to each delayed
message, so a run of several polls takes milliseconds of wall time. Every invocation is recorded
(`world.invocations`), with what it got and how long it ran.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from shared.lifecycle import Result, Step, StepMessage
from shared.lifecycle.step_message import message_for
from shared.platforms.port import Provisioning
from shared.runs import State
from tests.fakes.world import SAMPLE, Killed, MemoryWorld


@pytest.fixture
def world(tmp_path: Path) -> MemoryWorld:
    return MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="2", provisioning_time=timedelta(minutes=3))


def polls(world: MemoryWorld) -> list[str]:
    return [str(i.outcome.detail) for i in world.invocations if i.message.step == Step.POLL and i.outcome]


def test_a_deployment_of_several_polls_goes_live_with_no_invocation_over_a_second(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name)
    started = time.perf_counter()
    outcome = world.life.on_job_event(world.event(run, "Completed"))
    assert (outcome.result, outcome.state) == (Result.QUEUED, State.SUCCEEDED)
    assert time.perf_counter() - started < 0.5 and world.platform.effects["register"] == 0  # only queued
    world.drain()
    live = world.get(run.run_id)
    assert live.state == State.LIVE and world.platform.live_deployment(live.endpoint) == live.deployment
    # Waits of 30 s, 30 s, 45 s, 67 s...: Creating at each poll for 3 minutes, then Succeeded.
    seen = [p.split(" after")[0] for p in polls(world)]
    assert len(seen) >= 4 and set(seen[:-1]) == {"Creating"} and seen[-1] == "Succeeded"
    assert world.platform.effects["deploy"] == 1 and world.platform.effects["set_traffic"] == 1
    assert max(i.seconds for i in world.invocations) < 1.0
    steps = [i.message.step for i in world.invocations if i.outcome and i.outcome.result != Result.IGNORED]
    assert steps == [Step.SUBMIT, Step.REGISTER, Step.DEPLOY, *[Step.POLL] * len(seen), Step.PROMOTE]
    # The timeline shows each poll, with what it saw.
    notes = [e.get("step", "") for e in live.history]
    assert [f"poll {n}" for n in range(1, len(seen) + 1)] == [n for n in notes if n.startswith("poll")]
    assert world.alerts() == []


def test_polls_wait_longer_each_time_up_to_the_max(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="1", DEPLOY_POLL_INTERVAL="10s",
                        DEPLOY_POLL_MAX_INTERVAL="20s", provisioning_time=timedelta(minutes=2))
    world.live_run()
    waits = [p.split("next poll in ")[1] for p in polls(world) if "next poll in" in p]
    assert waits[:3] == ["10 s", "15 s", "20 s"] and set(waits[2:]) == {"20 s"}


def test_a_handler_killed_mid_deployment_is_taken_over_and_nothing_is_deleted(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name)
    world.life.on_job_event(world.event(run, "Completed"))
    world.drain(until=lambda: world.get(run.run_id).deploy_started_at is not None)  # begun, Creating

    def die(_: str) -> None:  # the worker dies right after reading the state, holding the step's lease
        raise Killed()

    world.platform.hooks["deployment_status"] = die
    world.drain()
    live = world.get(run.run_id)
    assert live.state == State.LIVE and world.alerts() == []
    assert world.platform.deleted_unfinished == [] and world.platform.effects["delete_deployment"] == 0
    assert world.platform.deployments_made[(live.endpoint, live.deployment)] == 1
    # The killed poll's message came back (a second delivery) and waited out the dead handler's lease.
    assert any(i.dequeue_count > 1 for i in world.invocations if i.message.step == Step.POLL)


def test_a_deployment_that_ends_failed_rolls_back_with_one_alert(world: MemoryWorld) -> None:
    first = world.live_run("first.jsonl")
    world.platform.script_deployment(Provisioning.FAILED, error="OutOfQuota: no quota for the instance type")
    second = world.upload("second.jsonl", b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:40]))
    world.complete(second)
    after = world.get(second.run_id)
    assert after.state == State.ROLLED_BACK and "OutOfQuota" in after.error
    assert world.alerts() == ["deploy.failed"]
    assert world.platform.live_deployment(first.endpoint) == first.deployment
    assert world.get(first.run_id).state == State.LIVE and world.platform.deleted_unfinished == []


def test_a_stuck_deployment_is_deleted_and_alerted_and_the_previous_one_keeps_serving(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="1", DEPLOY_TIMEOUT="20m")
    first = world.live_run("first.jsonl")
    world.platform.script_deployment(Provisioning.CREATING)  # never ends
    second = world.upload("second.jsonl", b'{"messages": [{"role": "user", "content": "hi"}, '
                          b'{"role": "assistant", "content": "hello"}]}\n' * 30)
    world.complete(second)
    after = world.get(second.run_id)
    assert after.state == State.ROLLED_BACK and "DEPLOY_TIMEOUT" in after.error
    assert world.alerts() == ["deploy.stuck"]
    assert world.platform.deleted_unfinished == [(first.endpoint, after.deployment)]
    assert world.platform.live_deployment(first.endpoint) == first.deployment


def test_twenty_concurrent_duplicate_step_messages_make_one_deployment_and_one_switch(
        world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name)
    world.life.on_job_event(world.event(run, "Completed"))
    world.drain(until=lambda: world.get(run.run_id).state == State.REGISTERED)
    registered = world.get(run.run_id)
    for _ in range(19):  # twenty copies of the deploy step in all: redeliveries, a reconciler, an operator
        world.steps.send(message_for(registered, Step.DEPLOY).encode())
    world.drain(workers=20)
    live = world.get(run.run_id)
    assert live.state == State.LIVE
    assert world.platform.effects["deploy"] == 1 and world.platform.effects["set_traffic"] == 1
    assert world.alerts() == [] and world.steps.texts() == []


def test_a_poisoned_step_ends_the_run_with_exactly_one_alert(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name)

    def broken(endpoint: str) -> None:
        raise RuntimeError("a bug in the promote step")

    world.platform.get_endpoint = broken  # type: ignore[assignment,method-assign]
    world.life.on_job_event(world.event(run, "Completed"))
    world.drain()
    after = world.get(run.run_id)
    assert after.state == State.ROLLED_BACK and "every delivery" in after.error
    assert "RuntimeError: a bug in the promote step" in after.error
    assert world.alerts() == ["step.failed"]
    promotes = [i for i in world.invocations if i.message.step == Step.PROMOTE]
    # host.json's maxDequeueCount (5) deliveries, then the poison trigger's one.
    assert [i.dequeue_count for i in promotes] == [1, 2, 3, 4, 5, 1]
    assert world.poison.texts() == [] and world.steps.texts() == []
    assert world.platform.deployments_made and not any(
        world.platform.endpoints[e].deployments for e in world.platform.endpoints)  # nothing left billing


def test_the_same_poison_message_twice_alerts_once(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name)
    world.life.on_job_event(world.event(run, "Completed"))
    (message,) = world.queued()  # the register step; as if it had failed on every delivery
    first, again = world.life.on_poison(message), world.life.on_poison(message)
    assert (first.result, again.result) == (Result.FAILED, Result.IGNORED)
    assert world.get(run.run_id).state == State.FAILED and world.alerts() == ["step.failed"]


def test_a_stale_or_malformed_message_does_nothing() -> None:
    with pytest.raises(ValueError, match="not a step message"):
        StepMessage.decode(b'{"run_id": "", "step": "poll", "seq": 1}')
    with pytest.raises(ValueError, match="not a step message"):
        StepMessage.decode(b"hello")


def test_a_late_message_for_a_run_that_moved_on_is_ignored(world: MemoryWorld) -> None:
    live = world.live_run()
    effects = dict(world.platform.effects)
    stale = StepMessage(run_id=live.run_id, step=Step.POLL, seq=live.step_seq - 2, endpoint=live.endpoint,
                        deployment=live.deployment)
    outcome = world.life.on_step(stale, dequeue_count=3)
    assert outcome.result == Result.IGNORED and "stale" in outcome.detail
    assert dict(world.platform.effects) == effects and world.get(live.run_id).history == live.history


def test_a_step_the_host_kills_on_every_delivery_ends_in_poison_with_one_alert(world: MemoryWorld) -> None:
    # The host abandons an invocation at functionTimeout: no `finally` of ours runs, the lease stays held
    # (STEP_TIMEOUT outlives functionTimeout), and the message comes back while it is.
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name)

    def killed(*args: object, **kwargs: object) -> None:
        raise Killed("functionTimeout")  # the gate's scoring hangs past it

    world.platform.score = killed  # type: ignore[method-assign]
    world.life.on_job_event(world.event(run, "Completed"))
    world.drain(limit=200)  # before the fix: a fresh copy each time the lease ran out, for ever
    after = world.get(run.run_id)
    assert after.state == State.ROLLED_BACK and "every delivery" in after.error
    assert world.alerts() == ["step.failed"]
    promotes = [i for i in world.invocations if i.message.step == Step.PROMOTE]
    ran = [i for i in promotes if i.outcome is None]  # the killed ones returned nothing
    assert 1 < len(ran) <= 5
    assert max(i.message.deliveries + i.dequeue_count for i in promotes) > 5
    assert world.steps.texts() == [] and world.poison.texts() == []
