"""The devhost's queue listener keeps the Functions host's rules (the WebJobs storage extension's
QueueListener and QueueProcessor): a message delivered more than maxDequeueCount times is poisoned
without running, a message's hold is renewed while its function runs, and an invocation past
functionTimeout fails there, so a step killed at the timeout on every delivery ends in the poison queue
with one alert."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devhost.host import function_timeout_of
from devhost.queues import QueueHost, QueueOptions
from devhost.triggers import FunctionTimeout, within
from shared.lifecycle import Step
from shared.queues import Delivery
from shared.queues.memory import InMemoryQueue
from shared.runs import State
from tests.fakes.world import MemoryWorld


def test_a_message_delivered_past_max_dequeue_count_is_poisoned_without_running() -> None:
    now = [datetime(2026, 12, 6, tzinfo=UTC)]
    steps, poison = InMemoryQueue("steps", lambda: now[0]), InMemoryQueue("steps-poison", lambda: now[0])
    ran: list[Delivery] = []
    host = QueueHost(steps, poison, ran.append, QueueOptions(max_dequeue_count=5))  # holds for 10 minutes
    steps.send("step")
    for _ in range(5):  # five workers died holding it: each hold runs out
        (_taken,) = host.receive()
        now[0] += timedelta(minutes=11)
    (sixth,) = host.receive()
    assert sixth.dequeue_count == 6
    assert host.deliver(sixth) is False
    assert ran == [] and poison.texts() == ["step"] and steps.texts() == []


def test_a_poison_queue_has_no_poison_queue_and_keeps_a_failing_message_invisible() -> None:
    poison = InMemoryQueue("steps-poison")

    def fail(_: Delivery) -> None:
        raise RuntimeError("the ledger is down")

    host = QueueHost(poison, None, fail, QueueOptions(max_dequeue_count=1, visibility_timeout=timedelta(0)))
    poison.send("poisoned step")
    (got,) = host.receive()
    assert host.deliver(got) is False
    assert poison.receive(1, timedelta(seconds=1)) == [] and poison.texts() == ["poisoned step"]


def test_a_message_stays_taken_while_its_function_runs_past_the_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("devhost.queues.RECEIVE_VISIBILITY", timedelta(seconds=0.4))
    steps = InMemoryQueue("steps")
    host = QueueHost(steps, InMemoryQueue("steps-poison"), lambda _: time.sleep(1.5), QueueOptions())
    steps.send("long step")
    (got,) = host.receive()
    stolen: list[Delivery] = []
    done = threading.Event()

    def other_worker() -> None:
        while not done.is_set():
            stolen.extend(steps.receive(1, timedelta(seconds=0.4)))
            time.sleep(0.05)

    thief = threading.Thread(target=other_worker)
    thief.start()
    try:
        assert host.deliver(got) is True
    finally:
        done.set()
        thief.join()
    assert stolen == [] and steps.texts() == []


def test_a_call_past_its_timeout_fails_there_and_is_abandoned() -> None:
    release = threading.Event()
    started = time.perf_counter()
    with pytest.raises(FunctionTimeout, match=r"00:00:00 was exceeded by function: Functions\.steps"):
        within(lambda: release.wait(30), timedelta(seconds=0.2), "steps")
    assert time.perf_counter() - started < 1.0
    release.set()
    assert within(lambda: 7, timedelta(seconds=1), "steps") == 7


def test_a_step_killed_at_function_timeout_on_every_delivery_ends_in_poison_with_one_alert(
        tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="2", function_timeout=timedelta(seconds=0.2))
    run = world.upload("chat.jsonl")
    hung = threading.Event()
    world.platform.register = lambda *args, **kwargs: hung.wait(60)  # type: ignore[method-assign]
    try:
        world.complete(run)
    finally:
        hung.set()
    ended = world.get(run.run_id)
    assert ended.state == State.FAILED and "register failed on every delivery" in ended.error
    assert world.alerts() == ["step.failed"]
    # Ended by the poison queue's function, after deliveries that each ran into the timeout.
    assert [i.outcome.state for i in world.invocations if i.outcome and i.dequeue_count == 1
            and i.message.step == Step.REGISTER][-1:] == [State.FAILED]


def test_function_timeout_comes_from_host_json_or_the_app_setting_that_overrides_it() -> None:
    host_json = Path(__file__).resolve().parents[2] / "host.json"
    assert function_timeout_of(host_json, {}) == timedelta(minutes=10)
    assert function_timeout_of(host_json, {"AzureFunctionsJobHost__functionTimeout": "00:00:02"}) \
        == timedelta(seconds=2)
    assert function_timeout_of(host_json, {"AzureFunctionsJobHost__functionTimeout": "-1"}) is None
