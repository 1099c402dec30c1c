"""Typed views of Azure ML and storage events, in both schemas, and the builders the local engine uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.events import (
    RUN_COMPLETED,
    MalformedEvent,
    parse_run_event,
    run_event,
)

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load(name: str) -> dict[str, object]:
    return json.loads((EVENTS / name).read_text())


def test_run_completed_in_event_grid_schema() -> None:
    event = parse_run_event(load("run_completed.json"))
    assert event.job_status == "Completed" and event.job_name == "ftap-run-0123456789ab"
    assert event.job_tags["autopilot-run-id"] == "run-0123456789ab"
    assert event.event_time is not None and event.event_time.year == 2026


def test_status_changed_as_cloudevent_is_normalised() -> None:
    event = parse_run_event(load("run_failed_cloudevent.json"))
    assert event.job_status == "Failed"  # the sample spells it "failed"


@pytest.mark.parametrize("body", [
    [], {"eventType": RUN_COMPLETED}, {"eventType": RUN_COMPLETED, "data": {}},
    {"eventType": "Microsoft.MachineLearningServices.RunStatusChanged", "data": {"runId": "x"}},
    {"eventType": "Something.Else", "data": {"runId": "x"}},
])
def test_malformed_events_raise_a_clear_error(body: object) -> None:
    with pytest.raises(MalformedEvent):
        parse_run_event(body)  # type: ignore[arg-type]


def test_local_engine_builds_what_azure_ml_sends() -> None:
    built = run_event("ftap-run-1", "Failed", experiment="exp", tags={"a": "b"})
    parsed = parse_run_event(built)
    assert (parsed.job_status, parsed.job_name, dict(parsed.job_tags)) == ("Failed", "ftap-run-1", {"a": "b"})
    assert built["subject"].endswith("/runs/ftap-run-1")
    assert parse_run_event(run_event("j", "Completed", experiment="e", tags={})).event_type == RUN_COMPLETED
