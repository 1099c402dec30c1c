"""Pure pieces of the devhost: NCRONTAB schedules, HTTP route templates, alert lines, queued events."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest

from devhost.alerts import describe
from devhost.relay import read_event
from devhost.routes import _route_pattern
from devhost.timers import TimerSchedule, parse_schedule
from devhost.triggers import FunctionError, HostedFunction, Invoker, event_grid_argument, index

T0 = datetime(2026, 3, 2, 9, 29, 58, tzinfo=UTC)  # a Monday


def test_ncrontab_has_seconds_first() -> None:
    every_second = parse_schedule("* * * * * *", where="t")
    assert every_second(T0) == T0 + timedelta(seconds=1)
    weekday_morning = parse_schedule("0 30 9 * * Mon-Fri", where="t")
    assert weekday_morning(T0) == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert weekday_morning(datetime(2026, 3, 6, 10, tzinfo=UTC)) == datetime(2026, 3, 9, 9, 30, tzinfo=UTC)


def test_timespan_schedule_is_an_interval() -> None:
    assert parse_schedule("00:05:00", where="t")(T0) == T0 + timedelta(minutes=5)


@pytest.mark.parametrize("bad", ["*/5 * * * *", "0 0 * * * * 2026", "61 * * * * *", "", "00:00:00"])
def test_malformed_schedules_are_refused_naming_the_function(bad: str) -> None:
    with pytest.raises(FunctionError, match="function sweep"):
        parse_schedule(bad, where="function sweep")


def test_route_templates() -> None:
    run = _route_pattern("api", "runs/{run_id}")
    match = run.fullmatch("/api/runs/r-1")
    assert match is not None and match.groupdict() == {"run_id": "r-1"}
    assert run.fullmatch("/api/runs/r-1/extra") is None
    assert run.fullmatch("/runs/r-1") is None
    numbered = _route_pattern("api", "items/{id:int}/{rest?}")
    assert numbered.fullmatch("/api/items/x") is None
    assert numbered.fullmatch("/api/items/7").groupdict() == {"id": "7", "rest": None}  # type: ignore[union-attr]
    files = _route_pattern("api", "files/{*path}")
    assert files.fullmatch("/api/files/a/b.txt").group("path") == "a/b.txt"  # type: ignore[union-attr]


def test_alert_lines_are_readable() -> None:
    line = describe({"specversion": "1.0", "id": "x", "type": "run.failed", "source": "autopilot",
                     "data": {"severity": "error", "message": "out of quota", "run": "r1", "extra": None}})
    assert line == "ALERT [error] run.failed — out of quota — run=r1"
    assert describe("plain") == "ALERT plain"
    local = {"id": "r1:job.failed", "run_id": "r1", "alert_class": "job.failed", "severity": "error",
             "summary": "training failed", "details": {"job": "j-1"}, "at": "2026-01-01T00:00:00+00:00"}
    assert describe(local) == "ALERT [error] job.failed — training failed — run_id=r1 job=j-1"


def test_queued_events_may_be_plain_or_base64_json() -> None:
    event = {"eventType": "Microsoft.MachineLearningServices.RunCompleted", "data": {"runId": "j"}}
    assert read_event(json.dumps(event)) == event
    assert read_event(base64.b64encode(json.dumps(event).encode()).decode()) == event
    with pytest.raises(ValueError, match="neither JSON"):
        read_event("not json at all")


def test_timers_fire_on_startup_then_on_schedule_and_flag_late_ticks() -> None:
    fired: list[func.TimerRequest] = []

    def tick(timer: func.TimerRequest) -> None:
        fired.append(timer)

    timer = HostedFunction("tick", {"type": "timerTrigger", "name": "timer", "schedule": "0 * * * * *",
                                    "runOnStartup": True}, (), tick)
    clock = [T0]
    schedule = TimerSchedule([timer], Invoker(), now=lambda: clock[0])
    schedule.start()
    try:
        assert _eventually(lambda: len(fired) == 1)
        clock[0] = datetime(2026, 3, 2, 9, 30, 0, 500000, tzinfo=UTC)
        assert _eventually(lambda: len(fired) == 2)
        clock[0] = datetime(2026, 3, 2, 9, 32, 30, tzinfo=UTC)  # the 9:31 tick is 90 s late
        assert _eventually(lambda: len(fired) == 3)
    finally:
        schedule.stop()
    assert [t.past_due for t in fired] == [False, False, True]


def _eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_event_grid_bodies_become_the_library_s_own_event_types() -> None:
    grid = {"id": "e-1", "topic": "t", "subject": "experiments/x/runs/j", "eventType": "T",
            "eventTime": "2026-03-02T09:30:00Z", "data": {"runId": "j"}, "dataVersion": "2"}
    event = event_grid_argument(grid)
    assert isinstance(event, func.EventGridEvent) and event.get_json() == {"runId": "j"}
    assert (event.id, event.event_type, event.data_version) == ("e-1", "T", "2")
    assert event.subject == grid["subject"]
    assert event.event_time == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    cloud = {"specversion": "1.0", "id": "c-1", "source": "/ml", "type": "T", "time": "2026-03-02T09:30:00Z",
             "subject": "s", "data": {"runId": "j"}, "traceparent": "00-abc"}
    event = event_grid_argument(cloud)
    assert isinstance(event, func.CloudEvent) and event.get_json() == {"runId": "j"}
    assert (event.id, event.type, event.source, event.subject) == ("c-1", "T", "/ml", "s")


def test_an_app_is_indexed_once_however_often_it_is_read() -> None:
    app = func.FunctionApp()

    @app.function_name("tick")
    @app.timer_trigger(arg_name="timer", schedule="0 * * * * *")
    def tick(timer: func.TimerRequest) -> None:
        return None

    first, second = index(app), index(app)  # get_functions() itself refuses a second call
    assert first is second and [f.get_function_name() for f in first] == ["tick"]
