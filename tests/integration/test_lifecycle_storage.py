"""The handlers on the storage account's backends (Table Storage and Blob Storage on Azurite), with the
in-memory platform: the same lifecycle the unit tier runs on in-memory stores, here on the real ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.events import RunEvent
from shared.lifecycle import Lifecycle, Result
from shared.platforms.memory import InMemoryPlatform
from shared.runs import State
from shared.runs.table import TableRowStore
from shared.settings import Settings
from shared.staging import BlobRef, read_all
from shared.staging.azure_blob import AzureBlobStore
from shared.wiring import build_lifecycle
from tests.steps_host import run_steps

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"
pytestmark = pytest.mark.integration


def concurrently(times: int, action: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(times)
    results: list[Any] = []

    def go() -> None:
        barrier.wait()
        results.append(action())

    threads = [threading.Thread(target=go) for _ in range(times)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == times  # a thread that raised added nothing
    return results


@pytest.fixture
def app(settings_env: dict[str, str]) -> tuple[Lifecycle, InMemoryPlatform]:
    platform = InMemoryPlatform(provisioning_time=timedelta(seconds=1))  # polled once or twice
    life = build_lifecycle(Settings.from_env({**settings_env, "SMOKE_CONVERSATIONS": "2"}), platform)
    assert isinstance(life.ledger.store, TableRowStore) and isinstance(life.ctx.staging, AzureBlobStore)
    return life, platform


def test_concurrent_deliveries_go_live_once_and_idle_teardown_is_recorded(
        app: tuple[Lifecycle, InMemoryPlatform]) -> None:
    life, platform = app
    upload = BlobRef(life.ctx.settings.incoming_container, "chats.jsonl")
    life.ctx.staging.put(upload, SAMPLE.read_bytes())
    outcomes = concurrently(20, lambda: life.on_upload(upload))
    assert [o.result for o in outcomes].count(Result.QUEUED) == 1
    run_steps(life)  # the Azurite step queue, as the host runs it
    assert platform.effects["submit"] == 1
    (run,) = life.ledger.find(upload=upload.path)
    assert run.train_uri.startswith("http://127.0.0.1:")  # the staged file in this Azurite
    staged = read_all(life.ctx.staging, life.ctx.staging.ref(run.train_uri))
    assert len(staged.splitlines()) == run.train_rows

    platform.finish(run.job_name)
    event = RunEvent("e", "", "", run.job_name, "x", "azureml.PipelineRun", "Completed")
    concurrently(20, lambda: life.on_job_event(event))
    run_steps(life)
    assert [platform.effects[e] for e in ("register", "deploy", "set_traffic")] == [1, 1, 1]
    live = life.ledger.get(run.run_id)
    assert live is not None and live.state == State.LIVE and live.eval_rouge_l is not None

    report = life.on_sweep(life.ledger.now() + life.ctx.settings.idle_ttl + timedelta(minutes=5))
    assert report.deleted == [live.endpoint]
    down = life.ledger.get(run.run_id)
    assert down is not None and down.state == State.TORN_DOWN and down.teardowns == 1


def test_same_content_uploaded_again_is_a_duplicate(app: tuple[Lifecycle, InMemoryPlatform]) -> None:
    """A rule (the ledger's content-hash lookup), so no real training: the job is the in-memory one."""
    life, platform = app
    data = SAMPLE.read_bytes()
    first_upload, second_upload = (BlobRef(life.ctx.settings.incoming_container, name)
                                   for name in ("a.jsonl", "b.jsonl"))
    life.ctx.staging.put(first_upload, data)
    first = life.on_upload(first_upload)
    assert first.result is Result.QUEUED
    run_steps(life)  # the submit step
    life.ctx.staging.put(second_upload, data)
    second = life.on_upload(second_upload)
    assert second.result is Result.DUPLICATE
    states = sorted(r.state.value for r in life.ledger.all())
    assert states == ["duplicate", "submitted"] and platform.effects["submit"] == 1


def test_a_bad_upload_is_quarantined_in_the_account(app: tuple[Lifecycle, InMemoryPlatform]) -> None:
    life, platform = app
    bad = b'{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n'
    upload = BlobRef(life.ctx.settings.incoming_container, "bad.jsonl")
    life.ctx.staging.put(upload, bad)
    outcome = life.on_upload(upload)
    assert (outcome.result, outcome.state) == (Result.REJECTED, State.REJECTED)
    run = life.ledger.get(outcome.run_id)
    assert run is not None and run.error_count == 2
    quarantined = BlobRef(life.ctx.settings.rejected_container, run.quarantined_to)
    assert read_all(life.ctx.staging, quarantined) == bad
    assert life.ctx.staging.properties(upload) is None and platform.effects["submit"] == 0


def test_personal_data_is_redacted_in_the_staged_blob_and_kept_in_incoming(
        app: tuple[Lifecycle, InMemoryPlatform]) -> None:
    # The point is the staged blob itself: committed block by block in the account, with placeholders.
    life, _platform = app
    email, card = "jane.doe@contoso.com", "4539 1488 0343 6467"
    row = (b'{"messages": [{"role": "user", "content": "Bill ' + card.encode() + b', mail ' + email.encode()
           + b'"}, {"role": "assistant", "content": "Done."}]}\n')
    data = SAMPLE.read_bytes() + row
    upload = BlobRef(life.ctx.settings.incoming_container, "personal.jsonl")
    life.ctx.staging.put(upload, data)
    outcome = life.on_upload(upload)
    assert outcome.result is Result.QUEUED
    run = life.ledger.get(outcome.run_id)
    assert run is not None and run.sensitive == {"card_number": 1, "email": 1}
    staged = b"".join(read_all(life.ctx.staging, life.ctx.staging.ref(uri)) for uri in (run.train_uri,
                                                                                        run.test_uri))
    assert b"Bill <CARD_NUMBER>, mail <EMAIL>" in staged
    assert email.encode() not in staged and card.encode() not in staged
    assert read_all(life.ctx.staging, upload) == data  # the original, untouched, in incoming
