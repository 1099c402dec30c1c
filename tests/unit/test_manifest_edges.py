"""Issue 24, items 1-4: a manifest that waits is seen and ends; a refused manifest stops the data it names,
whatever its name; a test file is never the training file (and repeats are reported); runs are ordered by
when their uploads arrived, not by when their scans finished. On the in-memory world."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared import ops
from shared.lifecycle import Result
from shared.runs import State
from shared.staging import BlobRef
from tests.fakes.world import SAMPLE, MemoryWorld

ROWS = SAMPLE.read_bytes().splitlines(keepends=True)
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def make(tmp_path: Path, **env: str) -> MemoryWorld:
    return MemoryWorld(tmp_path, now=lambda: START, SMOKE_CONVERSATIONS="2", **env)


def manifest(world: MemoryWorld, name: str, doc: dict[str, object] | bytes) -> object:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return world.life.on_upload(world.drop(name, raw))


def test_a_manifest_that_waits_is_shown_and_ends_after_manifest_wait_with_one_alert(tmp_path: Path) -> None:
    world = make(tmp_path, MANIFEST_WAIT="6h")
    waiting = manifest(world, "mset/missing.manifest.json", {"data": "missing.jsonl"})
    assert waiting.result is Result.WAITING and waiting.run_id.startswith("wait-"), waiting
    assert manifest(world, "mset/missing.manifest.json", {"data": "missing.jsonl"}).result is Result.WAITING
    record = world.get(waiting.run_id)  # (the second upload is a new version: its own record)
    assert record.state is State.WAITING and record.waiting_for == ("mset/missing.jsonl",)

    view = ops.overview(world.life)
    shown = [r for r in view["runs"] if r["run_id"] == waiting.run_id]
    assert shown and shown[0]["waiting"] == "waiting for mset/missing.jsonl since 2026-12-01 09:00:00 UTC"
    assert "waiting for mset/missing.jsonl since" in ops.render_status_page(view)

    world.skipped += timedelta(hours=5)
    world.life.on_sweep()
    assert world.get(waiting.run_id).state is State.WAITING and world.alerts() == []
    world.skipped += timedelta(hours=2)
    world.life.on_sweep()
    world.life.on_sweep()
    ended = world.get(waiting.run_id)
    assert ended.state is State.REJECTED and "never came" in ended.error and "MANIFEST_WAIT" in ended.error
    assert world.alerts().count("manifest.expired") == 2  # one per manifest version, each once

    # The manifest's event delivered again: nothing new, no second alert.
    again = world.life.on_upload(BlobRef(world.settings.incoming_container, "mset/missing.manifest.json"))
    assert again.result is Result.ALREADY_HANDLED and world.alerts().count("manifest.expired") == 2
    late = world.life.on_upload(world.drop("mset/missing.jsonl"))
    assert late.result is Result.REJECTED and "stopped waiting" in late.detail, late
    world.drain()
    assert world.platform.specs == {}


def test_a_waiting_manifest_whose_files_come_starts_its_run(tmp_path: Path) -> None:
    world = make(tmp_path)
    waiting = manifest(world, "mset/own.manifest.json", {"data": "own.jsonl", "test": "held.jsonl"})
    still = world.life.on_upload(world.drop("mset/own.jsonl"))
    assert still.result is Result.WAITING and still.run_id == waiting.run_id
    assert world.get(waiting.run_id).waiting_for == ("mset/held.jsonl",)
    started = world.life.on_upload(world.drop("mset/held.jsonl", b"".join(ROWS[-5:])))
    assert started.result is Result.QUEUED, started
    assert world.get(waiting.run_id).state is State.ARRIVED
    world.skipped += timedelta(days=3)
    world.life.on_sweep()
    assert world.get(waiting.run_id).state is State.ARRIVED and "manifest.expired" not in world.alerts()


@pytest.mark.parametrize(("name", "doc"), [
    ("mset/unk.manifest.json", {"data": "unk.jsonl", "epoch": 2}),
    ("mset/epochs.manifest.json", {"data": "epochs.jsonl", "epochs": "two"}),
    ("mset/tf.manifest.json", {"data": "tf.jsonl", "test_fraction": -1}),
    ("mset/hp.manifest.json", {"data": "hp.jsonl", "hyperparameters": {"num_train_epochs": 0}}),
    ("mset/tf.jsonl.manifest.json", b"{not json"),  # unreadable: it names its default, mset/tf.jsonl
])
def test_a_refused_manifest_stops_the_data_it_names_whatever_its_name(
        tmp_path: Path, name: str, doc: dict[str, object] | bytes) -> None:
    world = make(tmp_path)
    assert manifest(world, name, doc).result is Result.REJECTED
    data = "mset/" + (doc["data"] if isinstance(doc, dict) else "tf.jsonl")  # type: ignore[operator]
    outcome = world.life.on_upload(world.drop(str(data)))
    assert outcome.result is Result.REJECTED, outcome
    assert f"is not trained: its manifest {name}" in outcome.detail
    world.drain()
    assert world.platform.specs == {} and list(world.staging.names(world.settings.staged_container)) == []
    sent = (world.settings.data_dir / "alerts.jsonl").read_text().splitlines()
    alerts = [json.loads(line) for line in sent]
    assert [a["summary"].split(" ")[0] for a in alerts] == ["manifest", f"incoming/{data}"]  # data is data


def test_a_manifest_may_not_test_on_its_training_file(tmp_path: Path) -> None:
    world = make(tmp_path)
    refused = manifest(world, "x.manifest.json", {"data": "x.jsonl", "test": "x.jsonl"})
    assert refused.result is Result.REJECTED and "the same file as \"data\"" in refused.detail, refused
    assert world.life.on_upload(world.drop("x.jsonl")).result is Result.REJECTED
    assert world.platform.specs == {}


def test_test_conversations_that_are_also_trained_on_are_reported(tmp_path: Path) -> None:
    world = make(tmp_path)
    manifest(world, "y.manifest.json", {"data": "y.jsonl", "test": "y-test.jsonl"})
    world.life.on_upload(world.drop("y.jsonl"))
    outcome = world.life.on_upload(world.drop("y-test.jsonl", b"".join(ROWS[:3] + ROWS[-1:])))
    run = world.get(outcome.run_id)
    assert run.test_in_train == 4 and run.test_rows == 4
    assert "4 of 4 test conversations are also in the training file" in run.history[-1]["note"]
    assert ops.run_view(run)["dataset"]["test_in_train"] == 4

    world = make(tmp_path / "apart")
    manifest(world, "y.manifest.json", {"data": "y.jsonl", "test": "y-test.jsonl"})
    world.life.on_upload(world.drop("y.jsonl", b"".join(ROWS[:-4])))
    apart = world.get(world.life.on_upload(world.drop("y-test.jsonl", b"".join(ROWS[-4:]))).run_id)
    assert apart.test_in_train == 0 and "also in the training file" not in apart.history[-1]["note"]


def test_runs_are_ordered_by_when_their_uploads_arrived_not_when_their_scans_finished(tmp_path: Path) -> None:
    world = make(tmp_path)
    first = world.drop("abc/pq.jsonl", b"".join(ROWS[:40]))
    world.skipped += timedelta(minutes=1)
    later = world.drop("abc/b/c.jsonl", b"".join(ROWS[10:]))
    world.skipped += timedelta(minutes=1)
    world.life.on_upload(later)  # its scan finished first
    world.skipped += timedelta(minutes=1)
    world.life.on_upload(first)
    world.drain()
    c, pq = world.run_of("abc/b/c.jsonl"), world.run_of("abc/pq.jsonl")
    assert pq.uploaded_at is not None and c.uploaded_at is not None and pq.uploaded_at < c.uploaded_at
    world.complete(c)
    world.complete(pq)
    assert world.get(c.run_id).state is State.LIVE
    superseded = world.get(pq.run_id)
    assert superseded.state is State.SUPERSEDED and c.run_id in superseded.error
