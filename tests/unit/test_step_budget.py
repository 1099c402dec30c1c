"""No step outlives host.json's functionTimeout: its worst case, computed from the settings and the clients'
limits, is shorter; and a step whose platform is slower than that fails cleanly before the host kills it.

A step's platform calls run within STEP_DEADLINE (shared/deadline.py): no call or attempt starts after it
(ctx.call before each attempt, the Azure clients' DeadlinePolicy before each HTTP attempt, retries and
polls included), and every request's timeouts are cut to what is left. So whatever a step does (the gate's
scoring, a traffic switch, a delete) its platform work ends by the deadline plus one connect; then at most
one wait that was already under way (a retry's backoff, a traffic read's interval), then its bookkeeping.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.lifecycle import Result, Step
from shared.lifecycle.step_machine import STEPS
from shared.platforms.azureml import clients, endpoints
from shared.runs import State
from shared.settings import Settings, parse_duration
from tests.fakes.world import MemoryWorld

ROOT = Path(__file__).resolve().parents[2]
# ctx.call's retries wait at most this long between attempts (wait_exponential(max=8)).
BACKOFF_MAX_S = 8.0
# After the deadline a step still writes its outcome: a few Table operations and a queue message, which
# Azure Storage answers in milliseconds. (A storage outage past this is the killed-invocation path: the
# message comes back, its deliveries carried, and ends in poison with one alert: test_steps.py.)
BOOKKEEPING_S = 60.0


def function_timeout_s() -> float:
    host = json.loads((ROOT / "host.json").read_text())
    return parse_duration("functionTimeout", host["functionTimeout"]).total_seconds()


def worst_case_s(settings: Settings) -> dict[Step, float]:
    """Each step's longest run: its deadline, the request under way then (its read cut to the deadline, its
    connect not), the one wait under way, the bookkeeping."""
    after = clients.CONNECT_TIMEOUT_S + max(BACKOFF_MAX_S, endpoints.TRAFFIC_READ_INTERVAL_S) + BOOKKEEPING_S
    return {step: settings.step_deadline.total_seconds() + after for step in STEPS}


def test_every_step_ends_before_function_timeout_with_the_default_settings() -> None:
    limit = function_timeout_s()
    worst = worst_case_s(Settings.from_env({"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"}))
    assert set(worst) == set(Step)
    over = {step: seconds for step, seconds in worst.items() if seconds >= limit}
    assert not over, f"steps that can outlive functionTimeout ({limit:.0f} s): {over}"


def test_a_step_deadline_that_leaves_no_room_is_visible_in_the_budget() -> None:
    limit = function_timeout_s()
    settings = Settings.from_env({"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true", "STEP_DEADLINE": "10m"})
    assert all(seconds >= limit for seconds in worst_case_s(settings).values())


class SlowWorld(MemoryWorld):
    """Each scoring request takes 100 s on the step deadline's clock (and none of the test's time)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, SMOKE_CONVERSATIONS="5", STEP_DEADLINE="5m")
        self.elapsed = 0.0
        self.life.ctx.monotonic = lambda: self.elapsed
        score = self.platform.score

        def slow(*args: object, **kwargs: object) -> object:
            self.elapsed += 100.0
            return score(*args, **kwargs)  # type: ignore[arg-type]

        self.platform.score = slow  # type: ignore[method-assign]


def test_a_gate_slower_than_the_deadline_fails_its_step_before_the_host_would_kill_it(tmp_path: Path) -> None:
    world = SlowWorld(tmp_path)
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name)
    world.life.on_job_event(world.event(run, "Completed"))
    starts: list[float] = []
    on_step = world.life.on_step

    def timed(message: object, dequeue_count: int = 1) -> object:
        starts.append(world.elapsed)
        try:
            return on_step(message, dequeue_count)  # type: ignore[arg-type]
        finally:
            spent = world.elapsed - starts[-1]
            assert spent <= world.settings.step_deadline.total_seconds() + 100.0  # + the ask under way

    world.life.on_step = timed  # type: ignore[method-assign]
    world.drain()
    after = world.get(run.run_id)
    assert after.state == State.ROLLED_BACK and "STEP_DEADLINE" in after.error
    assert world.alerts() == ["step.failed"]  # one alert, after maxDequeueCount deliveries
    promotes = [i for i in world.invocations if i.message.step == Step.PROMOTE]
    assert [i.dequeue_count for i in promotes] == [1, 2, 3, 4, 5, 1]
    assert promotes[-1].outcome is not None and promotes[-1].outcome.result == Result.FAILED


@pytest.mark.parametrize("left", [0.0, 0.5])
def test_no_azure_request_starts_once_the_deadline_has_passed(left: float) -> None:
    from shared import deadline
    from tests.fakes.azureml_world import build_world

    world = build_world()
    sent = len(world.wire.transport.requests)
    with deadline.within(left), pytest.raises(deadline.OutOfTime, match="STEP_DEADLINE"):
        world.platform.deployment_status("chats-ep", "blue")
    assert len(world.wire.transport.requests) == sent


def test_each_azure_request_waits_no_longer_than_the_step_has_left() -> None:
    from shared import deadline
    from tests.fakes.azureml_world import build_world
    from tests.unit.test_azureml_endpoints import trained

    world = build_world()
    ref = trained(world)
    world.deployed(ref, "chats-ep", "blue")
    timeouts: list[tuple[str, float, float]] = []
    transport, send = world.wire.transport, world.wire.transport.send

    def noting(request: object, **kwargs: float) -> object:
        timeouts.append((str(getattr(request, "url", "")), kwargs["read_timeout"],
                         kwargs["connection_timeout"]))
        return send(request, **kwargs)

    transport.send = noting  # type: ignore[method-assign,assignment]
    with deadline.within(30):
        world.platform.set_traffic("chats-ep", {"blue": 100})
        world.platform.score("chats-ep", {"input_data": {}}, deployment="blue")
        world.platform.delete_endpoint("chats-ep")
    assert timeouts and any("/score" in url for url, _, _ in timeouts)
    assert all(read <= 30 and connect <= clients.CONNECT_TIMEOUT_S for _, read, connect in timeouts), timeouts
