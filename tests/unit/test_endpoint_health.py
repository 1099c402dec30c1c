"""A dead endpoint does not look live (issue 14, item 5): the sweep reads each live run's deployment, marks
the run unhealthy with one alert per outage, the status views say so, and `redeploy` brings it back."""

from __future__ import annotations

from pathlib import Path

from shared import ops
from shared.lifecycle.gate import seed_payload
from shared.ops.actions import redeploy
from shared.runs import State, can_redeploy
from tests.fakes.world import MemoryWorld

CONVERSATION = [{"role": "user", "content": "hello"}]


def test_a_killed_deployment_is_marked_unhealthy_once_and_redeploy_brings_it_back(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    live = world.live_run()
    alerts_before = len(world.alerts())
    world.platform.kill(live.endpoint, live.deployment)

    first = world.life.on_sweep()
    second = world.life.on_sweep()
    down = world.get(live.run_id)
    assert down.state == State.UNHEALTHY and "killed" in down.error, down
    assert first.unhealthy == [f"{live.endpoint}/{live.deployment}"] and second.unhealthy == []
    assert world.alerts()[alerts_before:] == ["endpoint.unhealthy"]  # one, over two sweeps
    assert live.endpoint in world.platform.endpoints  # not torn down for being unhealthy
    assert can_redeploy(down)
    page = ops.render_status_page(ops.overview(world.life))
    assert "unhealthy: redeploy" in page and "killed" in page

    redeploy(world.life, live.run_id)
    world.drain()
    back = world.get(live.run_id)
    assert back.state == State.LIVE and not back.error, back
    assert world.platform.live_deployment(live.endpoint) == live.deployment
    assert world.platform.score(live.endpoint, seed_payload(CONVERSATION, 8, greedy=True))
    assert world.life.on_sweep().unhealthy == []

    # A second outage after the redeploy is a new one: alerted again (once).
    world.platform.kill(live.endpoint, live.deployment)
    world.life.on_sweep()
    world.life.on_sweep()
    assert world.get(live.run_id).state == State.UNHEALTHY
    assert world.alerts()[alerts_before:] == ["endpoint.unhealthy", "endpoint.unhealthy"]


def test_a_deployment_that_cannot_be_read_is_not_called_unhealthy(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    live = world.live_run()
    world.platform.fail("deployment_status", target=live.endpoint, times=10, permanent=True)
    report = world.life.on_sweep()
    assert world.get(live.run_id).state == State.LIVE and report.unhealthy == [] and report.failed == []


def test_a_deleted_deployment_puts_its_run_to_sleep(tmp_path: Path) -> None:
    """Nothing bills and nothing will bring it back by itself: the run is asleep (torn down, one alert), and
    a redeploy (or the front door's wake) serves it again."""
    world = MemoryWorld(tmp_path)
    live = world.live_run()
    with world.platform.lock:  # someone deleted it behind the app's back (the portal, a script)
        world.platform.endpoints[live.endpoint].deployments.pop(live.deployment)
        world.platform.endpoints[live.endpoint].traffic.pop(live.deployment)
    world.life.on_sweep()
    world.life.on_sweep()
    assert world.get(live.run_id).state == State.TORN_DOWN and world.alerts() == ["endpoint.torn_down"]
    redeploy(world.life, live.run_id)
    world.drain()
    assert world.get(live.run_id).state == State.LIVE
