"""A large staged train file is trained from a stream: every step the plan asks for runs (tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.models.tiny import ensure_tiny_base_model
from engine.train.train_data import STREAM_ABOVE_BYTES, TrainFile
from engine.train.training import fine_tune, resolve_plan

pytestmark = pytest.mark.integration


def test_a_streamed_train_file_trains_the_epochs_it_asks_for(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = ensure_tiny_base_model(tmp_path / "models")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(where), AutoTokenizer.from_pretrained(where)
    rows = [{"messages": [{"role": "user", "content": f"question {i}"},
                          {"role": "assistant", "content": "an answer " * 4}]} for i in range(12)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    plan = resolve_plan({}, {"apply_lora": "true", "num_train_epochs": "2",
                             "per_device_train_batch_size": "2"})
    streamed = TrainFile(path, len(rows), STREAM_ABOVE_BYTES + 1)  # as a file over the threshold would be
    result = fine_tune(model, tokenizer, streamed, rows[:2], plan, tmp_path / "trainer")
    assert result.metrics["train_steps"] == 12, "2 epochs of 6 batches, though a stream has no length"
    assert result.metrics["eval_loss"] < result.metrics["base_eval_loss"]
