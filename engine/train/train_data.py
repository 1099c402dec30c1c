"""The local job's training data: downloaded to disk in chunks, then read row by row, never held whole.

A 200 MB upload read with `readall()` and parsed into a list took ~2.2 GB in the job. Here the staged train
file is copied to the job's folder chunk by chunk (counting its rows on the way), and a file over
STREAM_ABOVE_BYTES is trained from an `IterableDataset` that parses one line at a time, with a bounded
shuffle buffer; the job's memory then stays flat in the upload's size (bench/engine/train_memory.py
measures it). A smaller file is loaded as a plain `Dataset`, so the trainer can batch conversations of
similar length (faster on CPU, see training.SPEED_SETTINGS). The test split is capped (TEST_ROWS_MAX), so
it stays a list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.chat_format import training_example

# Over this many bytes of staged train data the job streams it instead of loading it. Loaded, 10 MB of rows
# cost the job ~360 MB more than the tiny model alone (bench/engine/train_memory.py); 4 MiB bounds that
# near 150 MB.
STREAM_ABOVE_BYTES = 4 * 1024 * 1024
# Rows the streaming shuffle holds at once: enough to mix neighbouring conversations, bounded in memory.
SHUFFLE_BUFFER = 1000


@dataclass(frozen=True)
class TrainFile:
    """A staged train file on the job's disk: where it is, how many rows and bytes it holds."""

    path: Path
    rows: int
    bytes: int

    @property
    def streamed(self) -> bool:
        """Whether training reads it row by row (over STREAM_ABOVE_BYTES) rather than all at once."""
        return self.bytes > STREAM_ABOVE_BYTES


def save_chunks(chunks: Iterable[bytes], path: Path) -> TrainFile:
    """Write `chunks` (a blob download's) to `path`, counting the non-blank lines; memory: one chunk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = size = 0
    tail = b""
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            rows += sum(1 for line in lines if line.strip())
    rows += 1 if tail.strip() else 0
    return TrainFile(path, rows, size)


def conversation(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's messages (every key the chat format defines: weights, tool calls) and its tools, nothing else:
    a `prompt` column would make TRL read the rows as prompt-completion."""
    kept: dict[str, Any] = {"messages": [dict(m) for m in row["messages"]]}
    if row.get("tools"):
        kept["tools"] = list(row["tools"])
    return kept


def read_conversations(path: str) -> Iterator[dict[str, Any]]:
    """The file's rows as conversations, one line at a time."""
    with open(path, "rb") as lines:
        for line in lines:
            if line.strip():
                yield conversation(orjson.loads(line))


def read_examples(path: str, tokenizer: Any, model: str) -> Iterator[dict[str, Any]]:
    """The file's rows as token ids and labels (chat_format.training_example), one line at a time."""
    for row in read_conversations(path):
        yield training_example(tokenizer, row, model)


def examples(rows: Iterable[Mapping[str, Any]], tokenizer: Any, model: str) -> Any:
    """Rows in memory as the trainer's (tokenized, labelled) Dataset."""
    from datasets import Dataset

    return Dataset.from_list([training_example(tokenizer, conversation(row), model) for row in rows])


def train_dataset(file: TrainFile, seed: int, tokenizer: Any, model: str = "the base model") -> Any:
    """The trainer's dataset for `file`, tokenized and labelled: streamed (IterableDataset) when large, else
    loaded (Dataset)."""
    from datasets import Dataset, IterableDataset

    if not file.streamed:
        return Dataset.from_list(list(read_examples(str(file.path), tokenizer, model)))
    stream = IterableDataset.from_generator(
        read_examples, gen_kwargs={"path": str(file.path), "tokenizer": tokenizer, "model": model})
    return stream.shuffle(seed=seed, buffer_size=SHUFFLE_BUFFER)


def steps_for(rows: int, epochs: float, batch_size: int, accumulation: int) -> int:
    """Optimizer steps for `epochs` over `rows`, as the trainer counts them for a dataset it can measure
    (a streamed dataset has no length, so the trainer must be told)."""
    per_epoch = max(1, math.ceil(rows / max(1, batch_size)) // max(1, accumulation))
    return max(1, math.ceil(per_epoch * epochs))
