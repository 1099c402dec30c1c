"""Parquet uploads: same rules, row numbers as lines, staged as JSONL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from shared.dataset import MemorySink, scan, scan_path


def conversations(n: int) -> list[list[dict[str, str | None]]]:
    return [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i} " * (i % 5 + 1)}]
            for i in range(n)]


def test_parquet_matches_jsonl(tmp_path: Path) -> None:
    convs = conversations(300)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"prompt": [c[0]["content"] for c in convs], "messages": convs}), path)
    jsonl = b"".join(orjson.dumps({"messages": c}) + b"\n" for c in convs)
    train, test = MemorySink(), MemorySink()
    report = scan_path(path, None, train, test)
    baseline = scan([jsonl])
    assert report.valid and report.format == "parquet"
    assert report.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    for key in ("rows", "stats", "warnings"):
        assert report.to_dict()[key] == baseline.to_dict()[key]
    # The split key of a JSON line is its raw bytes' hash, so only the totals must agree across formats.
    assert report.train_rows + report.test_rows == 300 and report.test_rows >= 1
    assert train.value is not None and test.value is not None
    assert sorted((train.value + test.value).splitlines()) == sorted(jsonl.splitlines())


def test_parquet_row_numbers_and_optional_struct_fields(tmp_path: Path) -> None:
    convs = conversations(5)
    convs[3][1] = {"role": "assistant", "content": None}  # becomes a missing field in the struct column
    convs[1][0] = {"role": "user", "content": "hi", "name": "ann"}
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"messages": convs}), path, row_group_size=2)
    report = scan_path(path)
    assert [(e.line, e.code) for e in report.errors] == [(4, "message_missing_content")]


def test_parquet_without_messages_column_or_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a"]}), path)
    assert [e.code for e in scan_path(path).errors] == ["messages_missing"]
    path.write_bytes(b"not parquet at all")
    assert [e.code for e in scan_path(path).errors] == ["unreadable_file"]
