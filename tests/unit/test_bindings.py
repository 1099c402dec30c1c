"""The bindings function_app.py registers, read as the host reads them (get_dict_repr); no Core Tools."""

from __future__ import annotations

import importlib
import json
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azurefunctions.extensions.bindings.blob as blob
import pytest

from devhost import triggers
from devhost.timers import parse_schedule
from shared.lifecycle import step_machine
from shared.settings import parse_duration, setting

ROOT = Path(__file__).resolve().parents[2]

MINIMAL_ENV = {"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true", "INCOMING_CONTAINER": "incoming",
               "IDLE_SWEEP_SCHEDULE": "0 */15 * * * *", "STEP_QUEUE": "autopilot-steps"}


@pytest.fixture(scope="module")
def functions() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as env:
        for key, value in MINIMAL_ENV.items():
            env.setenv(key, value)
        app = importlib.import_module("function_app").app
        return {str(f.get_function_name()): f for f in triggers.index(app)}


def trigger(function: Any) -> dict[str, Any]:
    (found,) = [b.get_dict_repr() for b in function.get_bindings()
                if b.get_dict_repr()["type"].endswith("Trigger")]
    return dict(found)


def test_the_app_registers_its_three_triggers(functions) -> None:
    assert {name: trigger(f)["type"] for name, f in functions.items() if name in
            ("ingest", "job_events", "idle_sweep")} == {
        "ingest": "blobTrigger", "job_events": "eventGridTrigger", "idle_sweep": "timerTrigger"}


def test_ingest_is_an_event_grid_blob_trigger_on_the_incoming_container(functions) -> None:
    binding = trigger(functions["ingest"])
    assert binding["path"] == "%INCOMING_CONTAINER%/{name}"
    assert binding["source"] == "EventGrid"
    assert binding["connection"] == "AUTOPILOT_STORAGE"
    # The SDK-type binding (a streaming BlobClient), not InputStream, which reads the whole blob into memory.
    parameter = typing.get_type_hints(functions["ingest"].get_user_function())[binding["name"]]
    assert parameter is blob.BlobClient


def test_job_events_is_an_event_grid_trigger(functions) -> None:
    binding = trigger(functions["job_events"])
    assert binding["name"] == "event"
    assert {k for k in binding if k not in ("direction", "type", "name")} == set()


def test_idle_sweep_runs_every_quarter_hour_by_default(functions) -> None:
    binding = trigger(functions["idle_sweep"])
    assert binding["schedule"] == "%IDLE_SWEEP_SCHEDULE%"
    assert binding["runOnStartup"] is False
    assert binding["useMonitor"] is True
    schedule = parse_schedule(triggers.resolve(binding["schedule"], MINIMAL_ENV, where="idle_sweep"),
                              where="idle_sweep")
    first = schedule(datetime(2026, 1, 1, 0, 7, tzinfo=UTC))
    assert first == datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
    assert schedule(first) - first == timedelta(minutes=15)


def test_steps_and_their_poison_queue_are_queue_triggers_on_the_step_queue(functions) -> None:
    steps, poison = trigger(functions["steps"]), trigger(functions["steps_poison"])
    assert (steps["type"], steps["queueName"], steps["connection"]) == (
        "queueTrigger", "%STEP_QUEUE%", "AUTOPILOT_STORAGE")
    assert (poison["type"], poison["queueName"]) == ("queueTrigger", "%STEP_QUEUE%-poison")
    host = json.loads((ROOT / "host.json").read_text())
    queues = host["extensions"]["queues"]
    # The app sends base64 text; a failed step is retried a few times, then the poison trigger ends the run.
    assert queues["messageEncoding"] == "base64" and 1 < queues["maxDequeueCount"] <= 10
    # A copy re-sent while a dead handler's lease ran out is poisoned by the same count.
    assert queues["maxDequeueCount"] == step_machine.MAX_DELIVERIES
    # A step never runs near functionTimeout, and the lease outlives the invocation that took it.
    step_timeout = setting("STEP_TIMEOUT").read({}, "local")
    assert parse_duration("functionTimeout", host["functionTimeout"]) < step_timeout


def test_every_registered_function_can_be_driven_by_the_devhost(functions) -> None:
    app = importlib.import_module("function_app").app
    hosted = triggers.read_functions(app, MINIMAL_ENV)
    assert hosted["ingest"].trigger["path"] == "incoming/{name}"
    assert set(functions) == set(hosted)


def test_a_missing_setting_in_a_binding_expression_is_named() -> None:
    with pytest.raises(triggers.FunctionError, match="IDLE_SWEEP_SCHEDULE"):
        triggers.resolve("%IDLE_SWEEP_SCHEDULE%", {}, where="idle_sweep")
