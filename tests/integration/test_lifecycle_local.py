"""The handlers over the real local engine and Azurite: upload → job → model → endpoint → teardown.

One run goes the whole way (a real fine-tune, a real server): live, torn down when idle, woken by the front
door. Rules that need no real job run on the in-memory world instead: a killed deployment found unhealthy
once and redeployed (tests/unit/test_endpoint_health.py; the local engine's killed server reading Failed and
coming back is the platform contract's), two projects live at once (test_lifecycle_properties.py; on the
engine, two endpoints sharing one process: tests/integration/engine/test_shared_serving.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError

from shared.events import parse_run_event
from shared.front import FrontDoor, Refusal
from shared.lifecycle import Lifecycle, Result, Step
from shared.lifecycle.gate import seed_payload
from shared.runs import State
from shared.settings import Settings
from shared.staging import BlobRef
from shared.storage import queue_client
from shared.wiring import build_lifecycle
from tests.steps_host import run_steps

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"
pytestmark = pytest.mark.integration


@pytest.fixture
def lifecycle(settings_env: dict[str, str]) -> Iterator[Lifecycle]:
    app = build_lifecycle(Settings.from_env(settings_env))  # default IDLE_TTL: sweeps pass a later clock
    yield app
    app.close()  # the local engine's endpoint servers


def upload(app: Lifecycle, name: str, data: bytes) -> BlobRef:
    blob = BlobRef(app.ctx.settings.incoming_container, name)
    app.ctx.staging.put(blob, data)
    return blob


def next_terminal_event(app: Lifecycle, timeout: float = 240) -> dict[str, object]:
    """The local engine's job events arrive on the queue the devhost relays; read them as it would."""
    queue = queue_client(app.ctx.settings.storage, app.ctx.settings.job_event_queue)
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in queue.receive_messages():
            queue.delete_message(message)
            body = json.loads(message.content)
            if parse_run_event(body).job_status in ("Completed", "Failed"):
                return dict(body)
        time.sleep(0.5)
    raise AssertionError("no terminal job event arrived")


def test_upload_goes_live_then_sleeps_when_idle_and_the_front_door_wakes_it(
        lifecycle: Lifecycle) -> None:
    outcome = lifecycle.on_upload(upload(lifecycle, "sample_chat.jsonl", SAMPLE.read_bytes()))
    assert outcome.result is Result.QUEUED
    run_steps(lifecycle)  # the submit step
    run = lifecycle.ledger.get(outcome.run_id)
    assert run is not None and run.state == State.SUBMITTED
    assert run.rows == 48 and run.test_rows is not None and run.test_rows >= 1
    assert run.train_rows is not None and run.train_rows + run.test_rows == 48

    # The same blob event delivered again starts nothing new.
    again = lifecycle.on_upload(BlobRef(lifecycle.ctx.settings.incoming_container, "sample_chat.jsonl"))
    assert (again.result, again.run_id) == (Result.ALREADY_HANDLED, run.run_id)

    event = parse_run_event(next_terminal_event(lifecycle))
    assert event.job_status == "Completed" and event.job_name == run.job_name
    assert lifecycle.on_job_event(event).result is Result.QUEUED
    ran = run_steps(lifecycle)
    live = lifecycle.ledger.get(run.run_id)
    assert live is not None and live.state == State.LIVE, live
    # The endpoint's server loading its model is Creating, as on Azure: polled, never waited for.
    assert [r.message.step for r in ran if r.outcome.result is not Result.IGNORED][:3] == [
        Step.REGISTER, Step.DEPLOY, Step.POLL]
    # Registering logs the model to MLflow (seconds of real work); beginning and polling never wait.
    assert max(r.seconds for r in ran if r.message.step in (Step.DEPLOY, Step.POLL)) < 1.0, [
        (str(r.message.step), round(r.seconds, 2)) for r in ran]
    assert live.model_name and live.model_version == "1"

    answer_me = seed_payload([{"role": "user", "content": "Hi"}])
    answer = lifecycle.platform.score(live.endpoint, answer_me)
    assert isinstance(answer["output"], str) and answer["output"]

    # A duplicate Completed event does nothing more: still one deployment, still version 1.
    lifecycle.on_job_event(event)
    run_steps(lifecycle)
    endpoint = lifecycle.platform.get_endpoint(live.endpoint)
    assert endpoint is not None and list(endpoint.deployments) == [live.deployment]

    # The timer fires once IDLE_TTL has passed without a request.
    later = lifecycle.ledger.now() + lifecycle.ctx.settings.idle_ttl + timedelta(minutes=1)
    report = lifecycle.on_sweep(later)
    assert report.deleted == [live.endpoint]
    down = lifecycle.ledger.get(run.run_id)
    assert down is not None and down.state == State.TORN_DOWN
    asleep = lifecycle.platform.get_endpoint(live.endpoint)  # its server stopped; name and key stay
    assert asleep is not None and asleep.deployments == ()

    # The front door wakes it: one redeploy of the same model, then real answers, whole and streamed.
    door = FrontDoor(lifecycle, "front-key", poll_s=0)
    request = {"model": live.endpoint, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    with pytest.raises(Refusal) as held:
        door.chat(request, hold_s=0)
    assert held.value.status == 503
    run_steps(lifecycle)
    woken = lifecycle.ledger.get(run.run_id)
    assert woken is not None and woken.state == State.LIVE and woken.wakes == 1
    assert door.chat(request, hold_s=0)["choices"][0]["message"]["content"]
    events = list(door.chat_stream(request, hold_s=0))
    assert events[0].startswith("data: {") and events[-1] == "data: [DONE]\n\n"


def test_bad_upload_is_quarantined_and_alerted_once(lifecycle: Lifecycle) -> None:
    bad = b'{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n'
    outcome = lifecycle.on_upload(upload(lifecycle, "bad.jsonl", bad))
    assert outcome.result is Result.REJECTED
    settings = lifecycle.ctx.settings
    assert lifecycle.ctx.staging.properties(BlobRef(settings.incoming_container, "bad.jsonl")) is None
    rejected = list(lifecycle.ctx.staging.names(settings.rejected_container))
    assert any(name.endswith("bad.jsonl") for name in rejected)
    alerts = (settings.data_dir / "alerts.jsonl").read_text().splitlines()
    assert len(alerts) == 1 and json.loads(alerts[0])["alert_class"] == "upload.rejected"


def test_an_unloadable_manifest_base_model_fails_the_run_saying_why(lifecycle: Lifecycle,
                                                                    tmp_path: Path) -> None:
    """A directory that holds no model passes the quick check at upload and fails in the job. The reason is on
    the job; the event only says Failed. It must reach the run, the alert and the page."""
    from shared import ops

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    manifest = json.dumps({"base_model": str(empty)}).encode()
    waiting = lifecycle.on_upload(upload(lifecycle, "chats.jsonl.manifest.json", manifest))
    assert waiting.result is Result.WAITING
    outcome = lifecycle.on_upload(upload(lifecycle, "chats.jsonl", SAMPLE.read_bytes()))
    assert outcome.result is Result.QUEUED
    run_steps(lifecycle)  # the submit step
    event = parse_run_event(next_terminal_event(lifecycle))
    assert event.job_status == "Failed"
    lifecycle.on_job_event(event)
    run = lifecycle.ledger.get(outcome.run_id)
    assert run is not None and run.state == State.FAILED
    reason = "could not be loaded offline"
    assert reason in run.error and str(empty) in run.error, run.error
    assert reason in (lifecycle.ctx.settings.data_dir / "alerts.jsonl").read_text()
    assert reason in ops.render_status_page(ops.overview(lifecycle))


def test_a_base_model_directory_that_does_not_exist_is_refused_before_staging(lifecycle: Lifecycle) -> None:
    manifest = json.dumps({"base_model": "/no/such/model-dir"}).encode()
    lifecycle.on_upload(upload(lifecycle, "chats.jsonl.manifest.json", manifest))
    outcome = lifecycle.on_upload(upload(lifecycle, "chats.jsonl", SAMPLE.read_bytes()))
    assert outcome.result is Result.REJECTED
    run = lifecycle.ledger.get(outcome.run_id)
    assert run is not None and "/no/such/model-dir" in run.error and "BASE_MODEL" in run.error
    assert not (lifecycle.ctx.settings.data_dir / "jobs").exists(), "no job was started"
