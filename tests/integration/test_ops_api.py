"""The runs API through the devhost's HTTP routes, over a real ledger (Azurite) and the in-memory platform.

The lifecycle's own handlers move the runs (upload → job → live → teardown; a failed job), the steps run
from the Azurite step queue through the devhost's queue triggers, and the platform's deployments take a
second to provision; the test only stands in for the jobs running. Then the API must describe each run and
act on it as its state allows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost.host import DevHost
from shared.events import RunEvent
from shared.lifecycle import Lifecycle, Result
from shared.platforms.memory import InMemoryPlatform
from shared.platforms.port import TrainingRecord
from shared.settings import Settings
from shared.staging import BlobRef
from shared.wiring import build_lifecycle

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"
pytestmark = pytest.mark.integration


class CurvedPlatform(InMemoryPlatform):
    """The in-memory platform, with the optional loss history the status page draws."""

    def training_record(self, job_name: str) -> TrainingRecord:
        record = super().training_record(job_name)
        return replace(record, loss_curve=((1, 2.5), (2, 2.1), (3, 1.8), (4, 1.7)))


@pytest.fixture
def world(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DevHost, Lifecycle,
                                                                                  CurvedPlatform]]:
    platform = CurvedPlatform(provisioning_time=timedelta(seconds=1))
    life = build_lifecycle(settings, platform)
    import function_app
    import functions.runs_api
    import functions.steps

    monkeypatch.setattr(functions.runs_api, "lifecycle", lambda: life)
    monkeypatch.setattr(functions.steps, "lifecycle", lambda: life)
    env = {"AUTOPILOT_STORAGE": settings.storage.connection_string or "",
           "INCOMING_CONTAINER": settings.incoming_container, "IDLE_SWEEP_SCHEDULE": "0 0 0 1 1 *"}
    with DevHost(function_app.app, settings, env=env, watch_blobs=False, timers=False, relay=False,
                 alerts=False, poll_interval=0.2) as host:  # the host's backoff floor, not its 10 s ceiling
        yield host, life, platform


def drop(life: Lifecycle, name: str, lines: list[str]) -> str:
    upload = BlobRef(life.ctx.settings.incoming_container, name)
    life.ctx.staging.put(upload, "".join(lines).encode())
    outcome = life.on_upload(upload)
    assert outcome.result is Result.QUEUED, outcome
    wait_for(life, outcome.run_id, "submitted")  # the submit step, run by the devhost's queue trigger
    return outcome.run_id


def wait_for(life: Lifecycle, run_id: str, *states: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (run := life.ledger.get(run_id)) is None or run.state.value not in states:
        assert time.monotonic() < deadline, f"run {run_id} is {run and run.state}, not {states}"
        time.sleep(0.2)


def job_ends(life: Lifecycle, platform: InMemoryPlatform, run_id: str, status: str) -> None:
    run = life.ledger.get(run_id)
    assert run is not None
    platform.finish(run.job_name, status)
    life.on_job_event(RunEvent(id=f"e-{run.job_name}-{status}", event_type="RunStatusChanged", subject="",
                               job_name=run.job_name, experiment_name="x", job_type="azureml.PipelineRun",
                               job_status=status))
    wait_for(life, run_id, "live" if status == "Completed" else status.lower())


def test_runs_api_describes_each_run_and_acts_as_its_state_allows(world: Any) -> None:
    host, life, platform = world
    api = f"{host.base_url}/api"
    lines = SAMPLE.read_text().splitlines(keepends=True)
    live_id = drop(life, "good.jsonl", lines)
    job_ends(life, platform, live_id, "Completed")
    failed_id = drop(life, "other.jsonl", lines[:30])
    job_ends(life, platform, failed_id, "Failed")

    listing = httpx.get(f"{api}/runs").json()
    by_id = {r["run_id"]: r for r in listing["runs"]}
    live = by_id[live_id]
    assert live["state"] == "live"
    assert live["upload"]["blob"].endswith("/good.jsonl") and len(live["upload"]["content_sha256"]) == 64
    assert live["job"]["id"] and live["job"]["status"] == "Completed"
    assert live["job"]["loss_curve"][0] == [1, 2.5]
    assert live["model"] == {"name": live["model"]["name"], "version": "1"}
    assert live["endpoint"]["name"] == life.ctx.settings.endpoint_name and live["endpoint"]["deployment"]
    assert [h["state"] for h in live["history"]][-1] == "live" and all(h["at"] for h in live["history"])
    assert live["actions"] == [] and by_id[failed_id]["actions"] == ["retry"]
    assert "job.failed" in by_id[failed_id]["alerts"]
    assert [e["name"] for e in listing["endpoints"]] == [life.ctx.settings.endpoint_name]
    assert listing["endpoints"][0]["run_id"] == live_id and listing["endpoints"][0]["idle_seconds"] >= 0
    assert any(a["alert_class"] == "job.failed" for a in listing["alerts"])

    one = httpx.get(f"{api}/runs/{live_id}")
    assert one.status_code == 200 and one.json()["run_id"] == live_id
    missing = httpx.get(f"{api}/runs/run-nope")
    assert missing.status_code == 404 and "run-nope" in missing.json()["error"]
    assert httpx.post(f"{api}/runs/run-nope/retry").status_code == 404

    refused = httpx.post(f"{api}/runs/{live_id}/retry")
    assert refused.status_code == 409 and "is live" in refused.json()["error"]
    assert httpx.post(f"{api}/runs/{live_id}/redeploy").status_code == 409
    assert httpx.get(f"{api}/runs/{live_id}/redeploy").status_code == 405

    submits = platform.effects["submit"]
    retried = httpx.post(f"{api}/runs/{failed_id}/retry")
    assert retried.status_code == 202, retried.text
    assert retried.headers["location"] == f"{api}/runs/{failed_id}"
    assert retried.json()["state"] == "validated" and retried.json()["job"]["attempt"] == 2
    wait_for(life, failed_id, "submitted")
    assert platform.effects["submit"] == submits + 1

    life.on_sweep(life.ledger.now() + life.ctx.settings.idle_ttl + timedelta(minutes=5))
    down = httpx.get(f"{api}/runs/{live_id}").json()
    assert down["state"] == "torn_down" and down["costs"]["endpoint_hours"] >= 0
    asleep = platform.get_endpoint(live["endpoint"]["name"])  # the deployment went; the endpoint stays
    assert down["actions"] == ["redeploy"] and asleep is not None and asleep.deployments == ()
    deploys = platform.effects["deploy"]
    started = time.monotonic()
    back = httpx.post(f"{api}/runs/{live_id}/redeploy")
    assert back.status_code == 202 and back.json()["state"] == "deploying", back.text
    assert time.monotonic() - started < 1.0  # answered at once; the deployment takes its own time
    location = back.headers["location"]
    assert location == f"{api}/runs/{live_id}"
    wait_for(life, live_id, "live")
    followed = httpx.get(location).json()
    assert followed["state"] == "live" and followed["model"]["version"] == "1"
    assert platform.effects["deploy"] == deploys + 1
    assert any(h.get("step", "").startswith("poll") for h in followed["history"])

    page = httpx.get(f"{api}/status")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count('data-state="live"') >= 1 and f"row-{failed_id}" in page.text
    assert "<polyline" in page.text and "<script" not in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy, "no script may run on the page"
    assert page.headers["x-content-type-options"] == "nosniff"
