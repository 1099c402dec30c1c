"""What a platform cannot train as written is refused at upload; what it can is trained as the data says.

Rule tests on the in-memory world: per-turn `"weight": 0`, tool-calling data, and `"start_from": "live"`.
The in-memory platform reports the local engine's support (weights and tools honoured) unless a test gives it
the Azure ML adapter's (neither), as AzureMLPlatform.training_support does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.lifecycle import Result
from shared.platforms.azureml.platform import AzureMLPlatform
from shared.platforms.port import ModelRef, TrainingSupport
from shared.runs import Run, State
from shared.staging import BlobRef, read_all
from tests.fakes.world import MemoryWorld

AZURE_ML = TrainingSupport(per_turn_weights=False, tool_calling=False)


def row(i: int, weight: int | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"role": "assistant", "content": f"Answer number {i} is long enough to count."}
    if weight is not None:
        answer["weight"] = weight
    return {"messages": [{"role": "user", "content": f"Question number {i}?"}, answer]}


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def test_azure_ml_support_is_what_its_pipeline_honours() -> None:
    assert AzureMLPlatform.training_support(None) == AZURE_ML  # type: ignore[arg-type]


def test_an_upload_with_only_weight_0_answers_is_refused(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    outcome = world.life.on_upload(world.drop("chats.jsonl", jsonl([row(i, weight=0) for i in range(30)])))
    assert (outcome.result, outcome.state) == (Result.REJECTED, State.REJECTED)
    (error,) = world.get(outcome.run_id).errors
    assert error["code"] == "too_few_training_rows" and "30 more have no assistant turn of weight 1" in \
        error["message"]
    assert world.platform.effects["submit"] == 0


def test_weight_0_conversations_are_not_training_rows_nor_trained_tokens(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    kept = [row(i) for i in range(30)]
    plain = world.get(world.life.on_upload(world.drop("plain.jsonl", jsonl(kept))).run_id)
    mixed_rows = [*kept, *(row(100 + i, weight=0) for i in range(10))]
    mixed = world.get(world.life.on_upload(world.drop("mixed.jsonl", jsonl(mixed_rows))).run_id)
    assert mixed.state is State.VALIDATED and mixed.warnings == 10, "a warning per line with nothing to learn"
    assert (mixed.train_rows, mixed.test_rows) == (plain.train_rows, plain.test_rows)
    assert mixed.estimated_tokens == plain.estimated_tokens, "the budget and cost count trained tokens only"


def test_azure_refuses_weight_0_data_by_default_with_the_reason_and_the_way_out(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    world.platform.support = AZURE_ML
    data = jsonl([*(row(i) for i in range(20)), row(20, weight=0)])
    outcome = world.life.on_upload(world.drop("chats.jsonl", data))
    assert (outcome.result, outcome.state) == (Result.REJECTED, State.REJECTED)
    (error,) = world.get(outcome.run_id).errors
    assert error["line"] == 21 and error["code"] == "weight_not_honoured"
    assert "cannot honour" in error["message"] and "train_weight_zero_turns" in error["message"]
    assert list(world.staging.names(world.settings.staged_container)) == [], "refused before staging"
    # The manifest key accepts training those turns like any other.
    world.life.on_upload(world.drop("okay/chats.jsonl.manifest.json", b'{"train_weight_zero_turns": true}'))
    accepted = world.life.on_upload(world.drop("okay/chats.jsonl", data))
    assert accepted.result is Result.QUEUED and world.get(accepted.run_id).train_rows


def test_azure_refuses_tool_calling_data_by_name(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    world.platform.support = AZURE_ML
    tools = {**row(0), "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]}
    outcome = world.life.on_upload(world.drop("chats.jsonl", jsonl([*(row(i) for i in range(1, 20)), tools])))
    (error,) = world.get(outcome.run_id).errors
    assert error["code"] == "tools_not_supported" and '"tools"' in error["message"] and error["line"] == 20


def test_tools_are_staged_with_their_conversation(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, TEST_FRACTION="0.05")
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    rows = [{**row(i), "tools": tools} for i in range(30)]
    run = world.get(world.life.on_upload(world.drop("chats.jsonl", jsonl(rows))).run_id)
    container = world.settings.staged_container
    staged = [json.loads(line) for name in world.staging.names(container)
              for line in read_all(world.staging, BlobRef(container, name)).splitlines()]
    assert len(staged) == run.rows == 30 and all(r["tools"] == tools for r in staged), "never flattened"
    plain = world.life.on_upload(world.drop("plain.jsonl", jsonl([row(i) for i in range(30)])))
    assert (run.estimated_tokens or 0) > (world.get(plain.run_id).estimated_tokens or 0), "schemas count"


def test_start_from_live_trains_the_live_fine_tune_further_and_records_the_lineage(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    base = world.settings.base_model
    world.ledger.create(Run(run_id="earlier", state=State.LIVE, endpoint=world.settings.endpoint_name,
                            base_model=base, model_name="ft-support", model_version="3",
                            lineage=f"{base} → ft-support:2"))
    world.life.on_upload(world.drop("chats.jsonl.manifest.json", b'{"start_from": "live"}'))
    outcome = world.life.on_upload(world.drop("chats.jsonl", jsonl([row(i) for i in range(30)])))
    world.drain()
    run = world.get(outcome.run_id)
    spec = world.platform.specs[run.job_name]
    assert spec.start_from == ModelRef("ft-support", "3")
    assert spec.lineage == (base, "ft-support:2", "ft-support:3")
    assert (run.started_from, run.lineage) == ("ft-support:3", f"{base} → ft-support:2 → ft-support:3")
