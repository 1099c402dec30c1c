"""The idle sweep over the in-memory platform (held to the port's contract), ledger and alerts.

Endpoints are made through the platform's own calls at chosen times (a job, its model, a deployment, traffic,
requests), so the sweep decides from what a platform really reports; the clock is the test's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.lifecycle import SweepReport, sweep
from shared.platforms.port import KEEP_TAG, MANAGED_TAG, RUN_TAG, ActivityUnavailable, JobSpec, PlatformError
from shared.runs import Run, State
from tests.fakes.world import Killed, MemoryWorld

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PAYLOAD = {"input_data": {"input_string": [{"role": "user", "content": "hi"}]}}


class World(MemoryWorld):
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.clock = NOW
        # Deployments made here are ready at once: the sweep's tests are about idle time, not provisioning.
        super().__init__(data_dir, now=lambda: self.clock, provisioning_time=timedelta(0), **env)

    def at(self, hours_ago: float) -> None:
        self.clock = NOW - timedelta(hours=hours_ago)

    def add(self, name: str, deployed_hours_ago: float, last_request_hours_ago: float | None = None,
            tags: Mapping[str, str] | None = None) -> None:
        """An endpoint deployed (and last scored) that long ago, made through the platform's calls."""
        job = f"job-{name}"
        self.platform.submit(JobSpec(job, f"r-{name}", name, "", "memory://s/t", "memory://s/e"))
        self.platform.finish(job)
        model = self.platform.register(job, f"m-{name}", {})
        all_tags = {MANAGED_TAG: "true", **(tags or {})}
        tags = {k: v for k, v in all_tags.items() if v}
        if last_request_hours_ago is not None and last_request_hours_ago > deployed_hours_ago:
            # Redeployed since its last request: an earlier deployment answered that one.
            self.at(last_request_hours_ago)
            self.platform.begin_deployment(model, name, "green", tags)
            self.platform.set_traffic(name, {"green": 100})
            self.platform.score(name, PAYLOAD)
        self.at(deployed_hours_ago)
        self.platform.begin_deployment(model, name, "blue", tags)
        self.platform.set_traffic(name, {"blue": 100})
        self.platform.delete_deployment(name, "green")
        if last_request_hours_ago is not None and last_request_hours_ago <= deployed_hours_ago:
            self.at(last_request_hours_ago)
            self.platform.score(name, PAYLOAD)
        self.clock = NOW

    def live_run(self, run_id: str, endpoint: str, state: State = State.LIVE) -> Run:  # type: ignore[override]
        """A run walked through the state machine to `state` on `endpoint`."""
        run = self.ledger.create(Run(run_id, State.RECEIVED))
        assert run is not None
        path = [State.VALIDATED, State.SUBMITTED, State.SUCCEEDED, State.REGISTERED, State.DEPLOYING,
                State.LIVE]
        for step in path[:path.index(state) + 1]:
            run = self.ledger.advance(run, step, model_name="chat-ft", model_version="3", endpoint=endpoint,
                                      deployment="blue")
        return run

    def sweep(self) -> SweepReport:
        return sweep.on_sweep(self.life.ctx, NOW)

    def deleted(self) -> int:
        """Endpoints the sweep put to sleep: they stay, with no deployment left (nothing bills)."""
        return sum(1 for ep in self.platform.endpoints.values() if not ep.deployments)

    def alert_lines(self) -> list[dict[str, Any]]:
        path = self.settings.data_dir / "alerts.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def make_world(tmp_path: Path) -> Callable[..., World]:
    return lambda **env: World(tmp_path, **env)


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


def test_idle_past_ttl_is_torn_down_and_recorded(world: World) -> None:
    world.add("ep-idle", deployed_hours_ago=10, last_request_hours_ago=3)
    world.add("ep-busy", deployed_hours_ago=10, last_request_hours_ago=1.5)
    world.live_run("r-idle", "ep-idle")
    world.live_run("r-busy", "ep-busy")

    report = world.sweep()

    asleep = world.platform.get_endpoint("ep-idle")  # asleep: the endpoint (URL, keys) stays, nothing bills
    assert report.deleted == ["ep-idle"] and asleep is not None and asleep.deployments == ()
    assert world.platform.effects["delete_endpoint"] == 0
    assert report.kept == ["ep-busy (active within the TTL)"] and world.deleted() == 1
    down = world.get("r-idle")
    assert down.state == State.TORN_DOWN
    assert down.endpoint_hours == 10.0 and down.idle_hours == 3.0 and down.torn_down_at == NOW
    assert down.hours_saved == 360.0 - 3.0
    assert (down.model_name, down.model_version) == ("chat-ft", "3")  # the model stays registered
    assert world.get("r-busy").state == State.LIVE
    (alert,) = world.alert_lines()
    assert (alert["run_id"], alert["alert_class"]) == ("r-idle", "endpoint.torn_down")
    assert alert["severity"] == "info"
    assert alert["details"]["hours_saved"] == 357.0


def test_fresh_deployment_gets_a_grace_period(world: World) -> None:
    world.add("ep-new", deployed_hours_ago=1)
    world.add("ep-redeployed", deployed_hours_ago=0.5, last_request_hours_ago=30)
    world.add("ep-unused", deployed_hours_ago=2.5)
    report = world.sweep()
    assert report.deleted == ["ep-unused"]
    assert sorted(report.kept) == ["ep-new (active within the TTL)", "ep-redeployed (active within the TTL)"]


def test_keep_tag_exempts_the_endpoint(world: World) -> None:
    world.add("ep-keep", deployed_hours_ago=200, last_request_hours_ago=100, tags={KEEP_TAG: "true"})
    report = world.sweep()
    assert report.deleted == [] and world.deleted() == 0
    assert report.kept == [f"ep-keep ({KEEP_TAG}=true)"]


def test_unmanaged_endpoints_are_never_read_or_touched(world: World) -> None:
    world.add("theirs", deployed_hours_ago=500, tags={MANAGED_TAG: ""})
    world.add("also-theirs", deployed_hours_ago=500, tags={MANAGED_TAG: "false", RUN_TAG: "x"})
    report = world.sweep()
    assert world.deleted() == 0 and world.platform.activity_reads == []
    assert report == SweepReport()


def test_dry_run_reports_and_deletes_nothing(make_world: Callable[..., World]) -> None:
    world = make_world(SWEEP_DRY_RUN="true")
    world.add("ep-idle", deployed_hours_ago=10, last_request_hours_ago=5)
    world.live_run("r-idle", "ep-idle")
    report = world.sweep()
    assert report.would_delete == ["ep-idle"] and report.deleted == []
    assert world.deleted() == 0 and world.platform.get_endpoint("ep-idle") is not None
    assert world.get("r-idle").state == State.LIVE and world.alerts() == []


def test_deletion_cap_takes_the_longest_idle_first(make_world: Callable[..., World]) -> None:
    world = make_world(SWEEP_MAX_DELETIONS="2")
    for hours in (3, 9, 5, 7, 4):
        world.add(f"ep-{hours}h", deployed_hours_ago=20, last_request_hours_ago=hours)
    first = world.sweep()
    assert first.deleted == ["ep-9h", "ep-7h"]
    assert first.deferred == ["ep-5h", "ep-4h", "ep-3h"]
    second = world.sweep()
    assert second.deleted == ["ep-5h", "ep-4h"] and second.deferred == ["ep-3h"]


def test_missing_metrics_keep_the_endpoint_and_warn_once_per_run(world: World) -> None:
    world.add("ep-dark", deployed_hours_ago=50, last_request_hours_ago=40)
    world.platform.fail("endpoint_activity", target="ep-dark", times=2,
                        error=ActivityUnavailable("RequestsPerMinute for ep-dark: 503 from Azure Monitor"))
    world.live_run("r-dark", "ep-dark")
    for _ in range(2):
        report = world.sweep()
        assert report.activity_unknown == ["ep-dark"] and report.deleted == []
    assert world.deleted() == 0 and world.get("r-dark").state == State.LIVE
    (alert,) = world.alert_lines()
    assert (alert["run_id"], alert["alert_class"], alert["severity"]) == (
        "r-dark", "sweep.activity_unavailable", "warning")


def test_missing_metrics_without_a_run_warn_once_under_the_endpoint_name(world: World) -> None:
    world.add("ep-orphan", deployed_hours_ago=50)
    world.platform.fail("endpoint_activity", target="ep-orphan", times=2,
                        error=ActivityUnavailable("RequestsPerMinute for ep-orphan: 503 from Azure Monitor"))
    world.sweep()
    world.sweep()
    alerts = world.alert_lines()
    # Once, as for an endpoint with a run: the endpoint's own ledger row remembers it was sent.
    assert [(a["run_id"], a["severity"]) for a in alerts] == [("ep-orphan", "warning")]
    assert world.deleted() == 0


def test_a_request_during_the_sweep_wins(world: World) -> None:
    world.add("ep-race", deployed_hours_ago=10, last_request_hours_ago=3)
    world.live_run("r-race", "ep-race")

    def request_arrives(endpoint: str) -> None:
        world.platform.score(endpoint, PAYLOAD)  # lands between the decision and the delete

    world.platform.after("endpoint_activity", request_arrives)
    report = world.sweep()
    assert report.request_won == ["ep-race"] and report.deleted == []
    assert world.platform.get_endpoint("ep-race") is not None and world.get("r-race").state == State.LIVE
    assert world.platform.activity_reads == ["ep-race", "ep-race"]  # read again right before deleting
    assert world.alerts() == []


def test_a_deployment_in_progress_keeps_the_endpoint(world: World) -> None:
    world.add("ep-busy-deploy", deployed_hours_ago=10, last_request_hours_ago=4)
    world.live_run("r-new", "ep-busy-deploy", state=State.DEPLOYING)
    report = world.sweep()
    assert report.kept == ["ep-busy-deploy (a deployment to it is in progress)"]
    assert world.deleted() == 0


def test_a_failed_delete_leaves_the_run_live_and_warns(world: World) -> None:
    world.add("ep-locked", deployed_hours_ago=10, last_request_hours_ago=4)
    world.platform.fail("delete_deployment", target="ep-locked",
                        error=PlatformError("delete ep-locked: 403 AuthorizationFailed"))
    world.live_run("r-locked", "ep-locked")
    report = world.sweep()
    assert report.failed == ["ep-locked"] and world.get("r-locked").state == State.LIVE
    assert world.platform.live_deployment("ep-locked") == "blue"  # its traffic went back: it still answers
    (alert,) = world.alert_lines()
    assert (alert["alert_class"], alert["severity"]) == ("sweep.delete_failed", "warning")


def test_a_redeployed_run_torn_down_again_is_alerted_again(world: World) -> None:
    world.add("ep-again", deployed_hours_ago=10, last_request_hours_ago=4)
    world.live_run("r-again", "ep-again")
    world.sweep()
    run = world.get("r-again")
    run = world.ledger.advance(run, State.DEPLOYING)  # what Lifecycle.redeploy does, in short
    world.ledger.advance(run, State.LIVE)
    world.add("ep-again", deployed_hours_ago=3)
    world.sweep()
    final = world.get("r-again")
    assert final.state == State.TORN_DOWN and final.teardowns == 2
    assert world.alerts() == ["endpoint.torn_down"] * 2


def test_a_sweep_stopped_between_deleting_and_recording_is_finished_by_the_next(world: World) -> None:
    world.add("ep-idle", deployed_hours_ago=10, last_request_hours_ago=3)
    world.live_run("r-idle", "ep-idle")
    advance = world.ledger.advance

    def timed_out(run: Run, state: State, **changes: Any) -> Run:
        if state == State.TORN_DOWN:
            raise Killed("functionTimeout")  # the host abandons the sweep right after the delete
        return advance(run, state, **changes)

    world.ledger.advance = timed_out  # type: ignore[method-assign,assignment]
    with pytest.raises(Killed):
        world.sweep()
    del world.ledger.advance
    asleep = world.platform.get_endpoint("ep-idle")  # its deployment deleted, the endpoint kept
    assert asleep is not None and not asleep.deployments and world.get("r-idle").state == State.LIVE

    report = world.sweep()
    down = world.get("r-idle")
    assert down.state == State.TORN_DOWN and down.torn_down_at == NOW and down.teardowns == 1
    assert report.gone == ["ep-idle"] and world.alerts() == ["endpoint.torn_down"]
    world.sweep()
    assert world.alerts() == ["endpoint.torn_down"]  # once
