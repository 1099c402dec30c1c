"""The job-events function acknowledges what it cannot read: a malformed event must not be retried all day."""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from devhost import triggers


@pytest.fixture(scope="module")
def job_events() -> Any:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUTOPILOT_STORAGE", "UseDevelopmentStorage=true")
        app = importlib.import_module("function_app").app
        (function,) = [f for f in triggers.index(app) if f.get_function_name() == "job_events"]
        return function.get_user_function()


def event(event_type: str, data: dict[str, Any]) -> func.EventGridEvent:
    return func.EventGridEvent(id="e-1", data=data, topic="t", subject="experiments/x/runs/y",
                               event_type=event_type, event_time=datetime.now(UTC), data_version="1")


@pytest.mark.parametrize(("event_type", "data"), [
    ("Microsoft.MachineLearningServices.RunCompleted", {}),  # no runId
    ("Microsoft.MachineLearningServices.RunStatusChanged", {"runId": "j"}),  # no runStatus
    ("Microsoft.Storage.BlobCreated", {"url": "https://x/y"}),  # not a run event at all
])
def test_malformed_events_are_logged_and_acknowledged(job_events: Any, event_type: str, data: dict[str, Any],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert job_events(event(event_type, data)) is None  # returns: the host answers 200
    assert "ignored malformed job event e-1" in caplog.text
