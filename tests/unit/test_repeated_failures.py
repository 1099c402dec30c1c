"""Issue 24, item 6: a retry or a redeploy that fails again is alerted again (one alert per failed attempt,
not one per run), and a repeated delivery of the same failure still alerts once."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from shared import ops
from shared.platforms.port import Provisioning
from shared.runs import State
from tests.fakes.world import SAMPLE, MemoryWorld


@pytest.fixture
def world(tmp_path: Path) -> MemoryWorld:
    return MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="2", provisioning_time=timedelta(minutes=3))


def test_a_retry_whose_job_fails_again_is_one_more_alert(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name, "Failed")
    world.life.on_job_event(world.event(run, "Failed"))
    assert world.alerts() == ["job.failed"]

    ops.retry(world.life, run.run_id)
    world.drain()
    second = world.get(run.run_id)
    assert second.attempt == 2 and second.state == State.SUBMITTED
    world.platform.finish(second.job_name, "Failed")
    for _ in range(2):  # delivered twice: still one alert for this attempt
        world.life.on_job_event(world.event(second, "Failed"))
    assert world.get(run.run_id).state == State.FAILED
    assert world.alerts() == ["job.failed", "job.failed"]


def test_a_redeploy_rolled_back_again_is_one_more_alert_each_time(world: MemoryWorld) -> None:
    first = world.live_run("first.jsonl")
    world.platform.script_deployment(Provisioning.FAILED, error="OutOfQuota: no quota")
    second = world.upload("second.jsonl", b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:40]))
    world.complete(second)
    assert world.get(second.run_id).state == State.ROLLED_BACK
    assert world.alerts() == ["deploy.failed"]

    for attempt in (1, 2):
        world.platform.script_deployment(Provisioning.FAILED, error="OutOfQuota: still no quota")
        ops.redeploy(world.life, second.run_id)
        world.drain()
        again = world.get(second.run_id)
        assert again.state == State.ROLLED_BACK and again.redeploys == attempt
        assert world.alerts() == ["deploy.failed"] * (attempt + 1)
    assert world.platform.live_deployment(first.endpoint) == first.deployment


def test_each_attempt_s_alert_has_its_own_id(world: MemoryWorld) -> None:
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name, "Failed")
    world.life.on_job_event(world.event(run, "Failed"))
    ops.retry(world.life, run.run_id)
    world.drain()
    second = world.get(run.run_id)
    world.platform.finish(second.job_name, "Failed")
    world.life.on_job_event(world.event(second, "Failed"))
    sent = [json.loads(line) for line in (world.settings.data_dir / "alerts.jsonl").read_text().splitlines()]
    assert [a["id"] for a in sent] == [f"{run.run_id}:job.failed", f"{run.run_id}:job.failed#a2"]
    assert sent[1]["details"]["attempt"] == 2
