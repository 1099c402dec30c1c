"""The idle sweep over an in-memory endpoint fleet, the real ledger on Azurite and real alerts in a file.

The fleet fakes only what cannot run here: the platform's endpoints and their activity signal (Azure
Monitor's RequestsPerMinute in production). Everything the sweep decides from is set per test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.alerts import Alerts, FileSink
from shared.ledger import Ledger, Run, State
from shared.lifecycle import sweep
from shared.lifecycle.context import Context
from shared.platforms.port import (
    KEEP_TAG,
    MANAGED_TAG,
    RUN_TAG,
    ActivityUnavailable,
    EndpointInfo,
    JobSpec,
    JobState,
    ModelRef,
    NotFoundError,
    PlatformError,
)
from shared.settings import Settings
from shared.storage import blob_service, table_service

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Fleet:
    """An in-memory platform holding only endpoints: the part of the port the sweep uses."""

    def __init__(self) -> None:
        self.endpoints: dict[str, EndpointInfo] = {}
        self.last_request: dict[str, datetime] = {}
        self.metrics_down: set[str] = set()
        self.undeletable: set[str] = set()
        self.activity_reads: list[str] = []
        self.deleted: list[str] = []
        # Called after each activity read: lets a test land a request while the sweep is deciding.
        self.after_activity_read: Callable[[str], None] | None = None

    def add(self, name: str, deployed_hours_ago: float, last_request_hours_ago: float | None = None,
            tags: Mapping[str, str] | None = None) -> None:
        at = NOW - timedelta(hours=deployed_hours_ago)
        all_tags = {MANAGED_TAG: "true", **(tags or {})}
        self.endpoints[name] = EndpointInfo(name, {k: v for k, v in all_tags.items() if v}, at, {"blue": 100},
                                            ("blue",), last_deployed_at=at)
        if last_request_hours_ago is not None:
            self.last_request[name] = NOW - timedelta(hours=last_request_hours_ago)

    def list_endpoints(self) -> list[EndpointInfo]:
        return list(self.endpoints.values())

    def get_endpoint(self, endpoint: str) -> EndpointInfo | None:
        return self.endpoints.get(endpoint)

    def endpoint_activity(self, endpoint: str) -> datetime | None:
        self.activity_reads.append(endpoint)
        if endpoint not in self.endpoints:
            raise NotFoundError(f"endpoint {endpoint} not found")
        if endpoint in self.metrics_down:
            raise ActivityUnavailable(f"RequestsPerMinute for {endpoint}: 503 from Azure Monitor")
        last = self.last_request.get(endpoint)
        if self.after_activity_read is not None:
            self.after_activity_read(endpoint)
        return last

    def delete_endpoint(self, endpoint: str) -> None:
        if endpoint in self.undeletable:
            raise PlatformError(f"delete {endpoint}: 403 AuthorizationFailed")
        self.endpoints.pop(endpoint, None)
        self.deleted.append(endpoint)

    def submit(self, spec: JobSpec) -> JobState:
        raise NotImplementedError

    def job_status(self, job_name: str) -> JobState:
        raise NotImplementedError

    def register(self, job_name: str, model_name: str, tags: Mapping[str, str],
                 description: str = "") -> ModelRef:
        raise NotImplementedError

    def deploy(self, model: ModelRef, endpoint: str, deployment: str,
               tags: Mapping[str, str]) -> EndpointInfo:
        raise NotImplementedError

    def score(self, endpoint: str, payload: Mapping[str, Any], deployment: str | None = None) -> Any:
        raise NotImplementedError

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> None:
        raise NotImplementedError

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        raise NotImplementedError


class World:
    def __init__(self, ctx: Context, fleet: Fleet, alerts: FileSink) -> None:
        self.ctx, self.fleet, self.alerts = ctx, fleet, alerts

    @property
    def ledger(self) -> Ledger:
        return self.ctx.ledger

    def live_run(self, run_id: str, endpoint: str, state: State = State.LIVE) -> Run:
        """A run walked through the state machine to `state` on `endpoint`."""
        run = self.ledger.create(Run(run_id, State.RECEIVED))
        assert run is not None
        path = [State.VALIDATED, State.SUBMITTED, State.SUCCEEDED, State.REGISTERED, State.DEPLOYING,
                State.LIVE]
        for step in path[:path.index(state) + 1]:
            run = self.ledger.advance(run, step, model_name="chat-ft", model_version="3", endpoint=endpoint,
                                      deployment="blue")
        return run

    def sweep(self) -> dict[str, list[str]]:
        return sweep.on_sweep(self.ctx, NOW)

    def state(self, run_id: str) -> Run:
        run = self.ledger.get(run_id)
        assert run is not None
        return run


@pytest.fixture
def make_world(settings_env: dict[str, str], tmp_path: Path) -> Callable[..., World]:
    def make(**env: str) -> World:
        settings = Settings.from_env({**settings_env, **env})
        fleet = Fleet()
        sink = FileSink(tmp_path / "alerts.jsonl")
        ledger = Ledger(table_service(settings.storage), settings.ledger_table, clock=lambda: NOW)
        ctx = Context(settings, fleet, ledger, Alerts([sink]), blob_service(settings.storage))
        return World(ctx, fleet, sink)
    return make


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


def test_idle_past_ttl_is_torn_down_and_recorded(world: World) -> None:
    world.fleet.add("ep-idle", deployed_hours_ago=10, last_request_hours_ago=3)
    world.fleet.add("ep-busy", deployed_hours_ago=10, last_request_hours_ago=1.5)
    world.live_run("r-idle", "ep-idle")
    world.live_run("r-busy", "ep-busy")

    report = world.sweep()

    assert report["deleted"] == ["ep-idle"] and world.fleet.deleted == ["ep-idle"]
    assert report["kept"] == ["ep-busy (active within the TTL)"]
    down = world.state("r-idle")
    assert down.state == State.TORN_DOWN
    assert down.fields["endpoint_hours"] == 10.0 and down.fields["idle_hours"] == 3.0
    assert down.fields["hours_saved"] == 360.0 - 3.0
    assert (down.model_name, down.model_version) == ("chat-ft", "3")  # the model stays registered
    assert world.state("r-busy").state == State.LIVE
    (alert,) = world.alerts.read()
    assert (alert["run_id"], alert["alert_class"]) == ("r-idle", "endpoint.torn_down")
    assert alert["severity"] == "info"
    assert alert["details"]["hours_saved"] == 357.0


def test_fresh_deployment_gets_a_grace_period(world: World) -> None:
    world.fleet.add("ep-new", deployed_hours_ago=1)
    world.fleet.add("ep-redeployed", deployed_hours_ago=0.5, last_request_hours_ago=30)
    world.fleet.add("ep-unused", deployed_hours_ago=2.5)
    report = world.sweep()
    assert report["deleted"] == ["ep-unused"]
    assert sorted(report["kept"]) == ["ep-new (active within the TTL)",
                                      "ep-redeployed (active within the TTL)"]


def test_keep_tag_exempts_the_endpoint(world: World) -> None:
    world.fleet.add("ep-keep", deployed_hours_ago=200, last_request_hours_ago=100, tags={KEEP_TAG: "true"})
    report = world.sweep()
    assert report["deleted"] == [] and world.fleet.deleted == []
    assert report["kept"] == [f"ep-keep ({KEEP_TAG}=true)"]


def test_unmanaged_endpoints_are_never_read_or_touched(world: World) -> None:
    world.fleet.add("theirs", deployed_hours_ago=500, tags={MANAGED_TAG: ""})
    world.fleet.add("also-theirs", deployed_hours_ago=500, tags={MANAGED_TAG: "false", RUN_TAG: "x"})
    report = world.sweep()
    assert world.fleet.deleted == [] and world.fleet.activity_reads == []
    assert all(not entries for entries in report.values())


def test_dry_run_reports_and_deletes_nothing(make_world: Callable[..., World]) -> None:
    world = make_world(SWEEP_DRY_RUN="true")
    world.fleet.add("ep-idle", deployed_hours_ago=10, last_request_hours_ago=5)
    world.live_run("r-idle", "ep-idle")
    report = world.sweep()
    assert report["would_delete"] == ["ep-idle"] and report["deleted"] == []
    assert world.fleet.deleted == [] and "ep-idle" in world.fleet.endpoints
    assert world.state("r-idle").state == State.LIVE and world.alerts.read() == []


def test_deletion_cap_takes_the_longest_idle_first(make_world: Callable[..., World]) -> None:
    world = make_world(SWEEP_MAX_DELETIONS="2")
    for hours in (3, 9, 5, 7, 4):
        world.fleet.add(f"ep-{hours}h", deployed_hours_ago=20, last_request_hours_ago=hours)
    first = world.sweep()
    assert first["deleted"] == ["ep-9h", "ep-7h"]
    assert first["deferred"] == ["ep-5h", "ep-4h", "ep-3h"]
    second = world.sweep()
    assert second["deleted"] == ["ep-5h", "ep-4h"] and second["deferred"] == ["ep-3h"]


def test_missing_metrics_keep_the_endpoint_and_warn_once_per_run(world: World) -> None:
    world.fleet.add("ep-dark", deployed_hours_ago=50, last_request_hours_ago=40)
    world.fleet.metrics_down.add("ep-dark")
    world.live_run("r-dark", "ep-dark")
    for _ in range(2):
        report = world.sweep()
        assert report["activity_unknown"] == ["ep-dark"] and report["deleted"] == []
    assert world.fleet.deleted == [] and world.state("r-dark").state == State.LIVE
    (alert,) = world.alerts.read()
    assert (alert["run_id"], alert["alert_class"], alert["severity"]) == (
        "r-dark", "sweep.activity_unavailable", "warning")


def test_missing_metrics_without_a_run_warn_under_the_endpoint_name(world: World) -> None:
    world.fleet.add("ep-orphan", deployed_hours_ago=50)
    world.fleet.metrics_down.add("ep-orphan")
    world.sweep()
    world.sweep()
    alerts = world.alerts.read()
    assert [(a["run_id"], a["severity"]) for a in alerts] == [("ep-orphan", "warning")] * 2  # one per sweep
    assert world.fleet.deleted == []


def test_a_request_during_the_sweep_wins(world: World) -> None:
    world.fleet.add("ep-race", deployed_hours_ago=10, last_request_hours_ago=3)
    world.live_run("r-race", "ep-race")

    def request_arrives(endpoint: str) -> None:
        world.fleet.last_request[endpoint] = NOW  # lands between the decision and the delete
        world.fleet.after_activity_read = None

    world.fleet.after_activity_read = request_arrives
    report = world.sweep()
    assert report["request_won"] == ["ep-race"] and report["deleted"] == []
    assert "ep-race" in world.fleet.endpoints and world.state("r-race").state == State.LIVE
    assert world.fleet.activity_reads == ["ep-race", "ep-race"]  # read again right before deleting
    assert world.alerts.read() == []


def test_a_deployment_in_progress_keeps_the_endpoint(world: World) -> None:
    world.fleet.add("ep-busy-deploy", deployed_hours_ago=10, last_request_hours_ago=4)
    world.live_run("r-new", "ep-busy-deploy", state=State.DEPLOYING)
    report = world.sweep()
    assert report["kept"] == ["ep-busy-deploy (a deployment to it is in progress)"]
    assert world.fleet.deleted == []


def test_a_failed_delete_leaves_the_run_live_and_warns(world: World) -> None:
    world.fleet.add("ep-locked", deployed_hours_ago=10, last_request_hours_ago=4)
    world.fleet.undeletable.add("ep-locked")
    world.live_run("r-locked", "ep-locked")
    report = world.sweep()
    assert report["failed"] == ["ep-locked"] and world.state("r-locked").state == State.LIVE
    (alert,) = world.alerts.read()
    assert (alert["alert_class"], alert["severity"]) == ("sweep.delete_failed", "warning")


def test_a_redeployed_run_torn_down_again_is_alerted_again(world: World) -> None:
    world.fleet.add("ep-again", deployed_hours_ago=10, last_request_hours_ago=4)
    world.live_run("r-again", "ep-again")
    world.sweep()
    run = world.state("r-again")
    run = world.ledger.advance(run, State.DEPLOYING)  # what Lifecycle.redeploy does, in short
    world.ledger.advance(run, State.LIVE)
    world.fleet.add("ep-again", deployed_hours_ago=3)
    world.sweep()
    final = world.state("r-again")
    assert final.state == State.TORN_DOWN and final.fields["teardowns"] == 2
    assert [a["alert_class"] for a in world.alerts.read()] == ["endpoint.torn_down"] * 2
