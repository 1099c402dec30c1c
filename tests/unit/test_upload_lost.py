"""A failed upload is never lost in silence: when the host gives up on the blob trigger (its message moved to
webjobs-blobtrigger-poison), `ingest_poison` records the upload as a failed run and alerts once."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

from devhost import triggers
from shared.events import BlobTriggerMessage
from shared.runs import State
from shared.staging import BlobRef
from tests.fakes.world import MemoryWorld


@pytest.fixture
def world(tmp_path: Path) -> MemoryWorld:
    return MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="2")


@pytest.fixture
def ingest_poison(world: MemoryWorld, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AUTOPILOT_STORAGE", "UseDevelopmentStorage=true")
    app = importlib.import_module("function_app").app
    (function,) = [f for f in triggers.index(app) if f.get_function_name() == "ingest_poison"]
    monkeypatch.setattr("functions.ingest.lifecycle", lambda: world.life)
    return function.get_user_function()


def poisoned(world: MemoryWorld, name: str) -> func.QueueMessage:
    """The message the host moves to the poison queue for the upload `name`: its blob trigger message."""
    info = world.staging.properties(BlobRef(world.settings.incoming_container, name))
    assert info is not None
    body = BlobTriggerMessage("Host.Functions.ingest", world.settings.incoming_container, name,
                              f'"{info.etag.strip(chr(34))}"').to_json()
    return QueueMessage(id="m-1", body=json.dumps(body).encode(), dequeue_count=1)  # type: ignore[no-untyped-call]


def test_an_upload_the_blob_trigger_gave_up_on_is_a_failed_run_with_one_alert(world, ingest_poison) -> None:
    world.drop("huge.jsonl")
    message = poisoned(world, "huge.jsonl")
    ingest_poison(message)
    ingest_poison(message)  # the poison queue delivers at least once too
    (run,) = [r for r in world.ledger.all() if r.upload.endswith("huge.jsonl")]
    assert run.state == State.FAILED and "webjobs-blobtrigger-poison" in run.error
    assert world.alerts() == ["upload.failed"]


def test_a_poisoned_message_for_an_upload_that_has_a_run_changes_nothing(world, ingest_poison) -> None:
    run = world.upload("fine.jsonl")
    ingest_poison(poisoned(world, "fine.jsonl"))
    assert [r.run_id for r in world.ledger.all()] == [run.run_id] and world.alerts() == []


def test_an_unreadable_poison_message_is_dropped_with_a_log_line(ingest_poison, caplog) -> None:
    ingest_poison(QueueMessage(id="m-2", body=b"not json", dequeue_count=1))  # type: ignore[no-untyped-call]
    assert "unreadable blob trigger poison message m-2" in caplog.text


def test_ingest_poison_reads_the_blob_poison_queue_of_the_uploads_account() -> None:
    app = importlib.import_module("function_app").app
    (function,) = [f for f in triggers.index(app) if f.get_function_name() == "ingest_poison"]
    (trigger,) = [triggers.description(b) for b in function.get_bindings()]
    assert (trigger["type"], trigger["queueName"], trigger["connection"]) == (
        "queueTrigger", "webjobs-blobtrigger-poison", "AUTOPILOT_STORAGE")


def test_an_upload_no_trigger_handled_is_failed_by_the_sweep_once_it_is_old_enough(world) -> None:
    """Its BlobCreated never came: LOST_UPLOAD_AFTER (1 hour) later, a sweep fails it with one alert."""
    fine = world.upload("fine.jsonl")
    world.drop("forgotten.jsonl")
    world.drop("plan.manifest.json", b'{"train": "missing.jsonl"}')  # waits for its file: not an upload
    world.skipped += timedelta(minutes=50)
    world.life.on_sweep()
    assert world.alerts() == []
    world.skipped += timedelta(minutes=11)
    world.life.on_sweep()
    world.life.on_sweep()
    lost = [r for r in world.ledger.all() if r.run_id != fine.run_id]
    assert [(r.upload, r.state) for r in lost] == [("incoming/forgotten.jsonl", State.FAILED)]
    assert "no blob trigger handled it" in lost[0].error
    assert world.alerts() == ["upload.failed"]
