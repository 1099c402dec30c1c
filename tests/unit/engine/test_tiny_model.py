"""BASE_MODEL=tiny-random: built offline, the same bytes every time, loadable like any other model."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from engine.models.loading import BaseModelUnavailable, load_base_model
from engine.models.tiny import TINY_MODEL_NAME, ensure_tiny_base_model


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_two_builds_produce_identical_files(tmp_path: Path):
    first = ensure_tiny_base_model(tmp_path / "a")
    second = ensure_tiny_base_model(tmp_path / "b")
    assert first.name == TINY_MODEL_NAME
    assert "model.safetensors" in digest(first) and "tokenizer.json" in digest(first)
    assert digest(first) == digest(second)


def test_concurrent_builders_leave_one_complete_model(tmp_path: Path):
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_tiny_base_model(tmp_path)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [tmp_path / TINY_MODEL_NAME] * 2
    assert [p.name for p in tmp_path.iterdir()] == [TINY_MODEL_NAME]  # no staging dirs left behind
    assert ensure_tiny_base_model(tmp_path) == results[0]


def test_tiny_random_loads_the_tiny_chat_model_with_assistant_masks(tmp_path: Path):
    model, tokenizer = load_base_model("tiny-random", tmp_path)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    messages = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}]
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    # The answer and its end-of-turn token are trained; the prompt is not.
    assert tokenizer.decode(masked) == "Hello!<|end|>"
    assert masked[-1] == tokenizer.eos_token_id
    assert tokenizer.pad_token and tokenizer.bos_token


def test_a_directory_loads_through_the_same_path(tmp_path: Path):
    directory = ensure_tiny_base_model(tmp_path)
    model, tokenizer = load_base_model(str(directory), tmp_path / "unused")
    assert model.config.vocab_size == len(tokenizer)
    assert not (tmp_path / "unused").exists()


def test_a_missing_directory_is_refused_with_an_actionable_message(tmp_path: Path):
    with pytest.raises(BaseModelUnavailable, match="does not exist; set BASE_MODEL"):
        load_base_model(str(tmp_path / "nope"), tmp_path)
