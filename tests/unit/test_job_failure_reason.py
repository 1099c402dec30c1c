"""A job that fails says why: the platform's reason reaches the run's error, the alert and the status page,
whether the failure came in as an event (which carries only "Failed") or through the reconciler's poll."""

from __future__ import annotations

import json
from pathlib import Path

from shared import ops
from shared.runs import State
from tests.fakes.world import MemoryWorld


def test_an_event_s_failure_carries_the_job_s_reason(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    run = world.upload("chats.jsonl")
    world.platform.finish(run.job_name, "Failed")  # the fake's job fails with error "boom"
    world.life.on_job_event(world.event(run, "Failed"))
    world.life.on_job_event(world.event(run, "Failed"))  # delivered twice: still one alert

    failed = world.get(run.run_id)
    assert failed.state == State.FAILED and "boom" in failed.error
    sink = world.settings.data_dir / "alerts.jsonl"
    alerts = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [a["alert_class"] for a in alerts] == ["job.failed"] and "boom" in alerts[0]["summary"]
    page = ops.render_status_page(ops.overview(world.life))
    assert "boom" in page
