"""Issue 24, item 5: one rule set for fine-tune parameter ranges (shared.finetune.RANGES), the same for a
manifest's own keys and its `hyperparameters`, checked when the upload arrives; the message names the key and
the allowed range, and a run whose own parameters would fail it again is not offered `retry`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared import ops
from shared.dataset.manifest import ManifestError, parse_manifest
from shared.finetune import ParameterError, convert
from shared.lifecycle import Result
from shared.runs import Run, State, operator_actions
from tests.fakes.world import MemoryWorld


@pytest.mark.parametrize(("hyperparameters", "named", "allowed"), [
    ({"max_seq_length": 1}, "max_seq_length=1", "-1 (not set) or 64 to 131,072"),
    ({"num_train_epochs": 0}, "num_train_epochs=0", "1 to 100"),
    ({"learning_rate": 0}, "learning_rate=0", "more than 0 and at most 1"),
    ({"lora_r": 0}, "lora_r=0", "1 to 1,024"),
    ({"per_device_train_batch_size": -4}, "per_device_train_batch_size=-4", "1 to 1,024"),
])
def test_hyperparameters_that_cannot_train_are_refused_when_the_upload_arrives(
        tmp_path: Path, hyperparameters: dict[str, int], named: str, allowed: str) -> None:
    world = MemoryWorld(tmp_path)
    manifest = {"data": "chats.jsonl", "hyperparameters": hyperparameters}
    refused = world.life.on_upload(world.drop("chats.manifest.json", json.dumps(manifest).encode()))
    data = world.life.on_upload(world.drop("chats.jsonl"))
    assert refused.result is Result.REJECTED, refused
    assert named in refused.detail and allowed in refused.detail, refused.detail
    assert data.result is Result.REJECTED, data  # the data is not trained without its parameters
    world.drain()
    assert world.platform.specs == {} and list(world.staging.names(world.settings.staged_container)) == []


def test_the_manifest_key_and_the_hyperparameter_share_one_range() -> None:
    with pytest.raises(ManifestError, match="'epochs' must be a whole number from 1 to 100"):
        parse_manifest(b'{"epochs": 0}', "m.manifest.json")
    with pytest.raises(ParameterError, match="num_train_epochs=101 is out of range: it must be 1 to 100"):
        convert("num_train_epochs", 101)
    assert convert("num_train_epochs", 100) == 100 and convert("max_seq_length", -1) == -1


def test_a_run_whose_parameters_would_fail_again_is_not_offered_retry(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    failed = world.ledger.create(Run("run-0123456789ab", State.FAILED, train_uri="memory://staged/x/train",
                                     overrides={"max_seq_length": 1}, error="IndexError: Invalid key: 0"))
    assert failed is not None
    assert operator_actions(failed) == []
    with pytest.raises(ops.ActionRefused, match="max_seq_length=1 is out of range"):
        ops.retry(world.life, failed.run_id)
    fine = world.ledger.create(Run("run-ba9876543210", State.FAILED, train_uri="memory://staged/y/train",
                                   overrides={"max_seq_length": 512}, error="node lost"))
    assert fine is not None and operator_actions(fine) == ["retry"]


def test_a_finetune_setting_out_of_range_refuses_the_upload_naming_the_setting(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, FINETUNE_MAX_SEQ_LENGTH="1")
    refused = world.life.on_upload(world.drop("chats.jsonl"))
    assert refused.result is Result.REJECTED
    assert "FINETUNE_" in refused.detail or "FINETUNE_" in world.get(refused.run_id).error
    assert "max_seq_length='1' is out of range" in world.get(refused.run_id).error
    world.drain()
    assert world.platform.specs == {}
