"""on_upload's ways in: manifests (with and without a test file), budgets, forced re-runs, bad data, bad
manifests, overwrites mid-scan. On the in-memory backends; every outcome is asserted as the typed value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.lifecycle import Result
from shared.runs import State
from shared.staging import BlobRef, read_all
from tests.fakes.world import SAMPLE, MemoryWorld

ROWS = SAMPLE.read_bytes().splitlines(keepends=True)


@pytest.fixture
def world(tmp_path: Path) -> MemoryWorld:
    return MemoryWorld(tmp_path, MAX_TOKENS_PER_RUN="200000")


def staged_rows(world: MemoryWorld, uri: str) -> int:
    return len(read_all(world.staging, world.staging.ref(uri)).splitlines())


def test_manifest_first_then_data_starts_one_run_with_the_overrides(world: MemoryWorld) -> None:
    manifest = {
        "data": "train.jsonl",
        "test": "test.jsonl",
        "base_model": "my-model",
        "epochs": 2,
        "hyperparameters": {"lora_r": 16, "learning_rate": 0.001},
    }
    first = world.life.on_upload(world.drop("team/run.manifest.json", json.dumps(manifest).encode()))
    assert first.result is Result.WAITING and "team/train.jsonl" in first.detail
    second = world.life.on_upload(world.drop("team/train.jsonl", b"".join(ROWS[:40])))
    assert second.result is Result.WAITING and "team/test.jsonl" in second.detail
    third = world.life.on_upload(world.drop("team/test.jsonl", b"".join(ROWS[40:])))
    assert (third.result, third.state) == (Result.QUEUED, State.VALIDATED)
    world.drain()
    assert world.get(third.run_id).state == State.SUBMITTED

    (spec,) = world.platform.specs.values()
    assert spec.base_model == "my-model"
    assert spec.parameters["num_train_epochs"] == 2 and spec.parameters["lora_r"] == 16
    run = world.get(third.run_id)
    assert (run.train_rows, run.test_rows) == (40, 8) and run.test_upload.endswith("team/test.jsonl")
    assert staged_rows(world, run.train_uri) == 40 and staged_rows(world, run.test_uri) == 8
    # The same data with other settings is another run, not a duplicate.
    assert run.manifest == "team/run.manifest.json" and run.overrides["lora_r"] == 16


def test_a_manifest_with_an_unknown_parameter_is_refused_before_any_work(world: MemoryWorld) -> None:
    world.drop("x.jsonl", b"".join(ROWS))
    manifest = world.drop("x.jsonl.manifest.json", b'{"hyperparameters": {"lora_rank": 4}}')
    outcome = world.life.on_upload(manifest)
    assert (outcome.result, outcome.state) == (Result.REJECTED, State.REJECTED)
    assert "lora_rank" in world.get(outcome.run_id).error
    assert world.platform.effects["submit"] == 0 and world.alerts() == ["upload.rejected"]


def test_over_the_token_budget_is_rejected_with_the_numbers(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, MAX_TOKENS_PER_RUN="100")
    outcome = world.life.on_upload(world.drop("big.jsonl", b"".join(ROWS)))
    assert outcome.result is Result.REJECTED and world.platform.effects["submit"] == 0
    (run,) = list(world.ledger.all())
    assert run.state == State.REJECTED and "100" in json.dumps(run.errors)


def test_force_metadata_retrains_the_same_content(world: MemoryWorld) -> None:
    first = world.life.on_upload(world.drop("a.jsonl", b"".join(ROWS)))
    again = world.life.on_upload(world.drop("b.jsonl", b"".join(ROWS)))
    assert again.result is Result.DUPLICATE and world.get(again.run_id).duplicate_of == first.run_id
    forced = world.life.on_upload(world.drop("c.jsonl", b"".join(ROWS), force="true"))
    assert forced.result is Result.QUEUED and world.get(forced.run_id).forced
    world.drain()
    assert world.platform.effects["submit"] == 2


def test_the_same_delivery_again_starts_nothing(world: MemoryWorld) -> None:
    upload = world.drop("a.jsonl")
    first = world.life.on_upload(upload)
    world.drain()
    again = world.life.on_upload(upload)
    world.drain()
    assert (again.result, again.state) == (Result.ALREADY_HANDLED, State.SUBMITTED)
    assert world.platform.effects["submit"] == 1
    assert again.run_id == first.run_id


def test_bad_data_is_quarantined_with_its_report_and_alerted_once(world: MemoryWorld) -> None:
    bad = b'{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n'
    upload = world.drop("bad.jsonl", bad)
    outcome = world.life.on_upload(upload)
    assert (outcome.result, outcome.state) == (Result.REJECTED, State.REJECTED)
    run = world.get(outcome.run_id)
    assert run.error_count == 2 and len(run.errors) == 2
    assert world.staging.properties(upload) is None  # moved, after its copy was verified
    moved = BlobRef(world.settings.rejected_container, run.quarantined_to)
    assert read_all(world.staging, moved) == bad
    report = json.loads(read_all(world.staging, BlobRef(moved.container, f"{moved.name}.report.json")))
    assert report["error_count"] == 2
    assert world.life.on_upload(upload).result is Result.IGNORED  # a redelivery finds it gone
    assert world.alerts() == ["upload.rejected"] and world.platform.effects["submit"] == 0


def test_uploads_outside_the_incoming_container_are_ignored(world: MemoryWorld) -> None:
    outcome = world.life.on_upload(BlobRef("elsewhere", "a.jsonl"))
    assert outcome.result is Result.IGNORED and not list(world.ledger.all())


@pytest.mark.parametrize("name", ["bad\x01name.jsonl", "esc\x1b[2Jape.jsonl", "new\nline.jsonl",
                                  "x" * 1025 + ".jsonl"])
def test_a_name_the_app_cannot_carry_is_refused_by_name_and_alerted_once(world: MemoryWorld,
                                                                        name: str) -> None:
    """The Azure path: Event Grid's subject hands over any name storage accepted."""
    upload = world.drop(name)
    first = world.life.on_upload(upload)
    again = world.life.on_upload(upload)  # Event Grid delivers at least once
    assert (first.result, first.state) == (Result.REJECTED, State.REJECTED) and again.run_id == first.run_id
    run = world.get(first.run_id)
    assert run.error.startswith("the name") and run.upload.isprintable()
    assert world.alerts() == ["upload.rejected"] and world.platform.effects["submit"] == 0
    assert [r.run_id for r in world.ledger.all()] == [first.run_id], "nothing staged, no run"


@pytest.mark.parametrize("rows", [1, 2, 10])
def test_an_upload_too_small_to_train_and_test_is_refused_before_any_job(world: MemoryWorld,
                                                                         rows: int) -> None:
    """At least MIN_TRAINING_ROWS (default 10) train, plus a held-out row: never a deploy gate of 0 cases."""
    outcome = world.life.on_upload(world.drop("few.jsonl", b"".join(ROWS[:rows])))
    assert (outcome.result, outcome.state) == (Result.REJECTED, State.REJECTED)
    codes = {e["code"] for e in world.get(outcome.run_id).errors}
    assert "too_few_training_rows" in codes and ("too_few_rows_to_split" in codes) == (rows == 1)
    assert world.platform.effects["submit"] == 0 and world.alerts() == ["upload.rejected"]


def test_the_minimum_is_a_setting_and_counts_the_train_side(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, MIN_TRAINING_ROWS="2")
    outcome = world.life.on_upload(world.drop("three.jsonl", b"".join(ROWS[:3])))
    assert outcome.result is Result.QUEUED, outcome  # validated and staged; the submit step is queued
    run = world.get(outcome.run_id)
    assert (run.train_rows, run.test_rows) == (2, 1)


def test_a_default_token_budget_refuses_a_laptop_scale_mistake_before_any_job(tmp_path: Path) -> None:
    """No MAX_TOKENS_PER_RUN set: the local default (2 M training tokens) still holds; the report says why
    and what it would have cost."""
    world = MemoryWorld(tmp_path)
    row = json.dumps({"messages": [{"role": "user", "content": "q " * 10},
                                   {"role": "assistant", "content": "answer " * 600}]}).encode() + b"\n"
    outcome = world.life.on_upload(world.drop("huge.jsonl", row * 2400))
    assert outcome.result is Result.REJECTED and world.platform.effects["submit"] == 0
    (error,) = world.get(outcome.run_id).errors
    assert error["code"] == "token_budget_exceeded" and "MAX_TOKENS_PER_RUN" in error["message"]
    assert "2,000,000" in error["message"]
    run = world.get(outcome.run_id)
    report = read_all(world.staging,
                      BlobRef(world.settings.rejected_container, f"{run.quarantined_to}.report.txt"))
    assert b"cost estimate: about" in report and b"of the budget of 2,000,000 (MAX_TOKENS_PER_RUN)" in report
