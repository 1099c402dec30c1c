"""Deterministic train/test split while streaming: the same row always lands on the same side.

Each row's key is a stable 32-bit hash of the row (see `split_key`); rows whose key falls under `fraction`
of the range go to test, up to a cap. To promise at least one test row (and one train row) without
buffering the file, one candidate per side is held back until the end: the train row closest to the test
range, and the first test row.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

_RANGE = 1 << 32
Row = bytes | memoryview  # staged lines: a held-back row is bytes, a run of rows a view into a tally's buffer
KEY_BYTES = 512


def split_key(row: bytes) -> int:
    """The row's stable split key: CRC-32 of its bytes (the raw line of a JSON Lines upload; the compact
    JSON of the messages for Parquet).

    Not cryptographic on purpose: it only needs to be deterministic across runs and machines and evenly
    spread, and it runs once per row on the hot path. Python's hash() is salted per process, so it won't do.
    Hashing the raw line (not a re-serialization) spares a dumps per row when nothing is staged; identical
    lines always land on the same side. Only the first KEY_BYTES are hashed, seeded with the length: CRC-32
    over every byte cost a third of the whole scan, and rows that agree in both are near-duplicates anyway,
    which belong on the same side.
    """
    return zlib.crc32(row[:KEY_BYTES], len(row))


class Split:
    """Routes staged rows to train or test; the caller drains `train`/`test` (pending bytes) as it goes."""

    def __init__(self, fraction: float, test_rows_max: int) -> None:
        self._threshold = int(fraction * _RANGE)
        self._test_max = max(1, test_rows_max)
        self.train: list[Row] = []
        self.test: list[Row] = []
        self.train_rows = 0
        self.test_rows = 0
        self.train_tokens = 0
        self._held_train: tuple[int, Row, int] | None = None
        self._held_test: tuple[Row, int] | None = None

    def route(self, key: int, row: Row, tokens: int) -> None:
        """Send one staged row (with its estimated tokens) to its side."""
        if key < self._threshold and self.test_rows < self._test_max:
            self.test_rows += 1
            if self._held_test is None:
                self._held_test = (row, tokens)
            else:
                self.test.append(row)
            return
        self.train_rows += 1
        self.train_tokens += tokens
        held = self._held_train
        if held is None or key < held[0]:
            self._held_train = (key, row, tokens)
            if held is not None:
                self.train.append(held[1])
        else:
            self.train.append(row)

    def take(self, keys: Sequence[int], tokens: Sequence[int], staged: memoryview | None = None,
             ends: Sequence[int] = ()) -> None:
        """Route a run of rows in file order, exactly as `route` each; row k of the run is
        staged[ends[k - 1]:ends[k]] (`staged` is None when nothing is staged).

        One pass and a parallel scan's merge both call this, so it is written for speed: the rows that can
        only go to train without displacing the held-back row are added in bulk, as one view, and `route`
        sees the rest (the first test candidates and each new smallest key) as bytes of their own.
        """
        i, n = 0, len(keys)
        while i < n:
            held = self._held_train[0] if self._held_train is not None else _RANGE
            bound = held if self.test_rows >= self._test_max else max(held, self._threshold)
            j = i
            while j < n and keys[j] >= bound:
                j += 1
            if j > i:
                self.train_rows += j - i
                self.train_tokens += sum(tokens[i:j])
                if staged is not None:
                    self.train.append(staged[ends[i - 1] if i else 0:ends[j - 1]])
            if j < n:
                row = bytes(staged[ends[j - 1] if j else 0:ends[j]]) if staged is not None else b""
                self.route(keys[j], row, tokens[j])
            i = j + 1

    def finish(self) -> None:
        """Settle the held-back rows: at least one train row, and one test row when there are two rows
        (unless the fraction is 0: a file that is not split)."""
        if self.train_rows == 0 and self._held_test is not None:
            row, tokens = self._held_test
            self._held_test = None
            self.test_rows -= 1
            self.route(_RANGE, row, tokens)
        if self._threshold and self.test_rows == 0 and self.train_rows >= 2 and self._held_train is not None:
            _, row, tokens = self._held_train
            self._held_train = None
            self.train_rows -= 1
            self.train_tokens -= tokens
            self.test_rows += 1
            self.test.append(row)
        if self._held_train is not None:
            self.train.append(self._held_train[1])
            self._held_train = None
        if self._held_test is not None:
            self.test.append(self._held_test[0])
            self._held_test = None
