"""Parquet and .jsonl.gz uploads through on_upload on the in-memory backends: staged exactly as
`autopilot validate` reports them (ranged reads through the staging port), and a gzip body under a plain name
rejected as gzip and quarantined whole."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.dataset import Report, scan_path
from shared.lifecycle import Result
from shared.runs import State
from shared.staging import BlobRef, read_all
from tests.fakes.world import SAMPLE, MemoryWorld


@pytest.fixture
def world(tmp_path: Path) -> MemoryWorld:
    return MemoryWorld(tmp_path / "data")


def staged_lines(world: MemoryWorld, uri: str) -> list[bytes]:
    return read_all(world.staging, world.staging.ref(uri)).splitlines()


def assert_staged_as_validate_says(world: MemoryWorld, name: str, data: bytes, tmp_path: Path) -> Report:
    local = tmp_path / name.rsplit("/", 1)[-1]
    local.write_bytes(data)
    validated = scan_path(local)  # what `autopilot validate` says
    assert validated.valid
    outcome = world.life.on_upload(world.drop(name, data))
    assert outcome.result is Result.QUEUED, outcome  # validated and staged; the submit step is queued
    world.drain()
    run = world.get(outcome.run_id)
    assert run.state == State.SUBMITTED
    assert run.content_sha256 == validated.content_sha256
    assert (run.rows, run.train_rows, run.test_rows, run.estimated_tokens) == \
        (validated.rows, validated.train_rows, validated.test_rows, validated.estimated_tokens)
    assert len(staged_lines(world, run.train_uri)) == validated.train_rows
    assert len(staged_lines(world, run.test_uri)) == validated.test_rows
    return validated


def test_a_parquet_upload_is_staged_as_validate_reports_it(world: MemoryWorld, tmp_path: Path) -> None:
    rows = [orjson.loads(line) for line in SAMPLE.read_bytes().splitlines()]
    table = pa.table({"prompt": [r["messages"][0]["content"] for r in rows],
                      "messages": [r["messages"] for r in rows]})
    path = tmp_path / "built.parquet"
    pq.write_table(table, path, row_group_size=7)  # several row groups, an unread column between them
    report = assert_staged_as_validate_says(world, "team/chats.parquet", path.read_bytes(), tmp_path)
    assert report.format == "parquet" and report.rows == len(rows)


def test_a_jsonl_gz_upload_is_staged_as_validate_reports_it(world: MemoryWorld, tmp_path: Path) -> None:
    report = assert_staged_as_validate_says(world, "chats.jsonl.gz", gzip.compress(SAMPLE.read_bytes()),
                                            tmp_path)
    assert report.format == "jsonl.gz" and report.rows == len(SAMPLE.read_bytes().splitlines())


def test_a_gzip_body_named_jsonl_is_rejected_as_gzip_and_quarantined(world: MemoryWorld) -> None:
    packed = gzip.compress(SAMPLE.read_bytes())
    outcome = world.life.on_upload(world.drop("chats.jsonl", packed))
    assert (outcome.result, outcome.state) == (Result.REJECTED, State.REJECTED)
    run = world.get(outcome.run_id)
    assert [e["code"] for e in run.errors] == ["gzip_compressed"]
    box = world.settings.rejected_container  # the copy's sha256 was verified against the scan's
    assert read_all(world.staging, BlobRef(box, run.quarantined_to)) == packed
    report = json.loads(read_all(world.staging, BlobRef(box, f"{run.quarantined_to}.report.json")))
    assert [e["code"] for e in report["errors"]] == ["gzip_compressed"]
