"""One bad run or endpoint spoils nothing else (issue 14): it is logged and alerted once, every other run is
still reconciled and every other idle endpoint still torn down in the same sweep; a deployment that stopped
moving no longer keeps an endpoint (and its bill) alive."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from shared.runs import State
from tests.fakes.world import SAMPLE, MemoryWorld
from tests.unit.test_sweep import NOW, World

LINES = SAMPLE.read_bytes().splitlines(keepends=True)


def test_one_run_that_cannot_be_reconciled_leaves_the_others_reconciled(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="1", RECONCILE_AFTER="0s")
    bad, good = (world.upload(f"{n}.jsonl", b"".join(LINES[i:i + 30])) for i, n in ((0, "bad"), (5, "good")))
    for run in (bad, good):
        world.platform.finish(run.job_name)  # completed; the events were lost
    world.platform.fail("job_status", target=bad.job_name, times=10, error=RuntimeError("a malformed answer"))
    for _ in range(2):
        report = world.life.on_sweep()
        world.drain()
    assert world.get(good.run_id).state == State.LIVE  # reconciled in the first sweep, deployed after it
    assert world.get(bad.run_id).state == State.SUBMITTED
    assert any(o.run_id == bad.run_id and "RuntimeError" in o.detail for o in report.reconciled)
    assert world.alerts() == ["reconcile.failed"]  # one, over two sweeps


def test_one_endpoint_that_breaks_the_sweep_leaves_the_others_torn_down(tmp_path: Path) -> None:
    world = World(tmp_path)
    for name in ("ep-a", "ep-bad", "ep-c"):
        world.add(name, deployed_hours_ago=50)
    world.platform.fail("endpoint_activity", target="ep-bad", times=2, error=RuntimeError("bad JSON"))
    first = world.sweep()
    assert sorted(first.deleted) == ["ep-a", "ep-c"] and first.failed == ["ep-bad"]
    world.sweep()
    assert sorted(a["alert_class"] for a in world.alert_lines()) == [
        "endpoint.torn_down", "endpoint.torn_down", "sweep.failed"]  # the bad one once, over two sweeps
    assert "ep-bad" in world.platform.endpoints  # kept, not deleted blind


def test_a_failing_teardown_leaves_the_other_endpoints_torn_down(tmp_path: Path) -> None:
    world = World(tmp_path)
    for name in ("ep-a", "ep-bad", "ep-c"):
        world.add(name, deployed_hours_ago=50)
    world.platform.fail("delete_deployment", target="ep-bad", times=1, error=RuntimeError("oops"))
    report = world.sweep()
    assert sorted(report.deleted) == ["ep-a", "ep-c"] and report.failed == ["ep-bad"]


def test_a_deployment_that_stopped_moving_no_longer_keeps_its_endpoint(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.add("ep-stale", deployed_hours_ago=50)
    world.add("ep-moving", deployed_hours_ago=50)
    world.at(hours_ago=1)  # its last step ran an hour ago (STEP_TIMEOUT is 15 minutes)
    world.live_run("r-stale", "ep-stale", state=State.DEPLOYING)
    world.clock = NOW - timedelta(minutes=2)
    world.live_run("r-moving", "ep-moving", state=State.DEPLOYING)
    world.clock = NOW
    report = world.sweep()
    assert report.deleted == ["ep-stale"]
    assert report.kept == ["ep-moving (a deployment to it is in progress)"]
