"""The local job's training data: saved chunk by chunk, counted on the way, read one row at a time."""

from __future__ import annotations

from pathlib import Path

import orjson

from engine.models.tiny import ensure_tiny_base_model
from engine.train.train_data import (
    STREAM_ABOVE_BYTES,
    TrainFile,
    read_conversations,
    save_chunks,
    steps_for,
    train_dataset,
)


def rows(n: int) -> bytes:
    return b"".join(orjson.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                               {"role": "assistant", "content": f"a{i}"}],
                                  "prompt": "dropped"}) + b"\n" for i in range(n))


def test_chunks_are_saved_and_rows_counted_across_chunk_edges(tmp_path: Path) -> None:
    data = rows(7) + b"\n" + rows(2).rstrip(b"\n")  # a blank line, and no newline at the end
    chunks = [data[i:i + 5] for i in range(0, len(data), 5)]
    saved = save_chunks(iter(chunks), tmp_path / "job" / "train.jsonl")
    assert (saved.rows, saved.bytes) == (9, len(data)) and saved.path.read_bytes() == data
    first = next(read_conversations(str(saved.path)))
    assert first == {"messages": [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a0"}]}


def test_a_large_file_is_streamed_and_a_small_one_loaded(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ensure_tiny_base_model(tmp_path / "models"))
    path = tmp_path / "train.jsonl"
    path.write_bytes(rows(30))
    small = train_dataset(TrainFile(path, 30, 100), 1, tokenizer)
    assert len(small) == 30 and type(small).__name__ == "Dataset"
    large = train_dataset(TrainFile(path, 30, STREAM_ABOVE_BYTES + 1), 1, tokenizer)
    assert type(large).__name__ == "IterableDataset"
    seen = [tokenizer.decode([t for t, m in zip(row["input_ids"], row["labels"], strict=True) if m >= 0])
            for row in large]
    assert sorted(seen) == sorted(f"a{i}<|end|>" for i in range(30)), "every row once, shuffled in a buffer"


def test_steps_match_what_the_trainer_would_count() -> None:
    assert steps_for(rows=100, epochs=1, batch_size=1, accumulation=1) == 100
    assert steps_for(rows=100, epochs=2, batch_size=4, accumulation=1) == 50
    assert steps_for(rows=100, epochs=1, batch_size=4, accumulation=5) == 5
    assert steps_for(rows=3, epochs=0.5, batch_size=8, accumulation=4) == 1
