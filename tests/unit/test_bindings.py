"""The bindings function_app.py registers, read as the host reads them (get_dict_repr); no Core Tools."""

from __future__ import annotations

import importlib
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import azurefunctions.extensions.bindings.blob as blob
import pytest

from devhost import triggers
from devhost.timers import parse_schedule

MINIMAL_ENV = {"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true", "INCOMING_CONTAINER": "incoming",
               "IDLE_SWEEP_SCHEDULE": "0 */15 * * * *"}


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


def test_every_registered_function_can_be_driven_by_the_devhost(functions) -> None:
    app = importlib.import_module("function_app").app
    hosted = triggers.read_functions(app, MINIMAL_ENV)
    assert hosted["ingest"].trigger["path"] == "incoming/{name}"
    assert set(functions) == set(hosted)


def test_a_missing_setting_in_a_binding_expression_is_named() -> None:
    with pytest.raises(triggers.FunctionError, match="IDLE_SWEEP_SCHEDULE"):
        triggers.resolve("%IDLE_SWEEP_SCHEDULE%", {}, where="idle_sweep")
