"""The handlers over the real local engine and Azurite: upload → job → model → endpoint → teardown."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError

from shared.events import parse_run_event
from shared.ledger import State
from shared.lifecycle import Lifecycle, Upload
from shared.lifecycle.gate import seed_payload
from shared.settings import Settings
from shared.storage import blob_service, queue_client
from shared.wiring import build_lifecycle

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"
pytestmark = pytest.mark.integration


@pytest.fixture
def lifecycle(settings_env: dict[str, str]) -> Iterator[Lifecycle]:
    env = {**settings_env, "IDLE_TTL": "2s"}
    app = build_lifecycle(Settings.from_env(env))
    yield app
    app.platform.stop_all()  # type: ignore[attr-defined]


def upload(app: Lifecycle, name: str, data: bytes) -> Upload:
    container = app.ctx.blobs.get_container_client(app.ctx.settings.incoming_container)
    if not container.exists():
        container.create_container()
    container.upload_blob(name, data, overwrite=True)
    return Upload(app.ctx.settings.incoming_container, name)


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
            if parse_run_event(body).run_status in ("Completed", "Failed"):
                return dict(body)
        time.sleep(0.5)
    raise AssertionError("no terminal job event arrived")


def test_upload_goes_live_then_idle_sweep_tears_it_down(lifecycle: Lifecycle) -> None:
    outcome = lifecycle.on_upload(upload(lifecycle, "sample_chat.jsonl", SAMPLE.read_bytes()))
    assert "submitted" in outcome
    (run,) = [r for r in lifecycle.ledger.all() if r.state == State.SUBMITTED]
    assert run.fields["rows"] == 48 and run.fields["test_rows"] >= 1
    assert run.fields["train_rows"] + run.fields["test_rows"] == 48

    # The same blob event delivered again starts nothing new.
    assert "already handled" in lifecycle.on_upload(Upload(lifecycle.ctx.settings.incoming_container,
                                                           "sample_chat.jsonl"))

    event = parse_run_event(next_terminal_event(lifecycle))
    assert event.run_status == "Completed" and event.run_id == run.job_name
    lifecycle.on_job_event(event)
    live = lifecycle.ledger.get(run.run_id)
    assert live is not None and live.state == State.LIVE, live
    assert live.model_name and live.model_version == "1"

    answer = lifecycle.platform.score(live.endpoint, seed_payload([{"role": "user", "content": "Hi"}]))
    assert isinstance(answer["output"], str) and answer["output"]

    # A duplicate Completed event does nothing more: still one deployment, still version 1.
    lifecycle.on_job_event(event)
    endpoint = lifecycle.platform.get_endpoint(live.endpoint)
    assert endpoint is not None and list(endpoint.deployments) == [live.deployment]

    time.sleep(2.5)
    report = lifecycle.on_sweep()
    assert report["deleted"] == [live.endpoint]
    down = lifecycle.ledger.get(run.run_id)
    assert down is not None and down.state == State.TORN_DOWN
    assert lifecycle.platform.get_endpoint(live.endpoint) is None


def test_same_content_uploaded_again_is_a_duplicate(lifecycle: Lifecycle) -> None:
    data = SAMPLE.read_bytes()
    assert "submitted" in lifecycle.on_upload(upload(lifecycle, "a.jsonl", data))
    assert "duplicate of run" in lifecycle.on_upload(upload(lifecycle, "b.jsonl", data))
    states = sorted(r.state.value for r in lifecycle.ledger.all())
    assert states == ["duplicate", "submitted"]
    next_terminal_event(lifecycle)  # let the job finish before the data dir goes


def test_bad_upload_is_quarantined_and_alerted_once(lifecycle: Lifecycle) -> None:
    bad = b'{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n'
    outcome = lifecycle.on_upload(upload(lifecycle, "bad.jsonl", bad))
    assert outcome.startswith("rejected: 2 errors")
    settings = lifecycle.ctx.settings
    blobs = blob_service(settings.storage)
    assert not blobs.get_blob_client(settings.incoming_container, "bad.jsonl").exists()
    rejected = [b.name for b in blobs.get_container_client(settings.rejected_container).list_blobs()]
    assert any(name.endswith("bad.jsonl") for name in rejected)
    alerts = (settings.data_dir / "alerts.jsonl").read_text().splitlines()
    assert len(alerts) == 1 and json.loads(alerts[0])["alert_class"] == "upload.rejected"
