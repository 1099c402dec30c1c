"""The blob path against Azurite: Parquet and .jsonl.gz uploads staged exactly as `autopilot validate` reports
them, a gzip body under a plain name rejected as gzip, and a parallel scan over ranged blob reads that stages
the same blobs as one pass."""

from __future__ import annotations

import contextlib
import gzip
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient

from devhost.azurite import Azurite
from shared.dataset import BlobSource, BlockBlobSink, Limits, Parallelism, Report, scan_path, scan_upload
from shared.ledger import State
from shared.lifecycle import Lifecycle, Upload
from shared.settings import Settings
from shared.wiring import build_lifecycle
from tests.fakes.platform import InMemoryPlatform

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"
pytestmark = pytest.mark.integration


@pytest.fixture
def life(settings_env: dict[str, str]) -> Lifecycle:
    return build_lifecycle(Settings.from_env(settings_env), platform=InMemoryPlatform())


def drop(life: Lifecycle, name: str, data: bytes) -> Upload:
    container = life.ctx.blobs.get_container_client(life.ctx.settings.incoming_container)
    if not container.exists():
        container.create_container()
    container.upload_blob(name, data, overwrite=True)
    return Upload(container.container_name, name)


def staged_lines(life: Lifecycle, uri: str) -> list[bytes]:
    container, name = uri.split("/")[-3], "/".join(uri.split("/")[-2:])
    return life.ctx.blobs.get_blob_client(container, name).download_blob().readall().splitlines()


def assert_staged_as_validate_says(life: Lifecycle, name: str, data: bytes, tmp_path: Path) -> Report:
    local = tmp_path / name.rsplit("/", 1)[-1]
    local.write_bytes(data)
    validated = scan_path(local)  # what `autopilot validate` says
    assert validated.valid
    assert "submitted" in life.on_upload(drop(life, name, data))
    (run,) = [r for r in life.ledger.all() if r.state == State.SUBMITTED]
    assert run.content_sha256 == validated.content_sha256
    assert (run.fields["rows"], run.fields["train_rows"], run.fields["test_rows"]) == \
        (validated.rows, validated.train_rows, validated.test_rows)
    assert run.fields["estimated_tokens"] == validated.estimated_tokens
    assert len(staged_lines(life, run.fields["train_uri"])) == validated.train_rows
    assert len(staged_lines(life, run.fields["test_uri"])) == validated.test_rows
    return validated


def test_a_parquet_upload_is_staged_as_validate_reports_it(life: Lifecycle, tmp_path: Path) -> None:
    rows = [orjson.loads(line) for line in SAMPLE.read_bytes().splitlines()]
    table = pa.table({"prompt": [r["messages"][0]["content"] for r in rows],
                      "messages": [r["messages"] for r in rows]})
    path = tmp_path / "built.parquet"
    pq.write_table(table, path, row_group_size=7)  # several row groups, an unread column between them
    report = assert_staged_as_validate_says(life, "team/chats.parquet", path.read_bytes(), tmp_path)
    assert report.format == "parquet" and report.rows == len(rows)


def test_a_jsonl_gz_upload_is_staged_as_validate_reports_it(life: Lifecycle, tmp_path: Path) -> None:
    report = assert_staged_as_validate_says(life, "chats.jsonl.gz", gzip.compress(SAMPLE.read_bytes()),
                                            tmp_path)
    assert report.format == "jsonl.gz" and report.rows == len(SAMPLE.read_bytes().splitlines())


def test_a_gzip_body_named_jsonl_is_rejected_as_gzip_and_quarantined(life: Lifecycle) -> None:
    packed = gzip.compress(SAMPLE.read_bytes())
    outcome = life.on_upload(drop(life, "chats.jsonl", packed))
    assert outcome.startswith("rejected: 1 errors")
    (run,) = list(life.ledger.all())
    assert run.state == State.REJECTED
    assert [e["code"] for e in run.fields["errors"]] == ["gzip_compressed"]
    moved = run.fields["quarantined_to"]  # the copy's sha256 was verified against the scan's
    box = life.ctx.blobs.get_container_client(life.ctx.settings.rejected_container)
    assert box.download_blob(moved).readall() == packed
    assert b"gzip_compressed" in box.download_blob(f"{moved}.report.json").readall()


@pytest.fixture
def containers(azurite: Azurite) -> Iterator[tuple[BlobServiceClient, ContainerClient, ContainerClient]]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    suffix = uuid.uuid4().hex[:10]
    incoming, staged = service.create_container(f"in{suffix}"), service.create_container(f"st{suffix}")
    yield service, incoming, staged
    for container in (incoming, staged):
        with contextlib.suppress(ResourceNotFoundError):
            container.delete_container()


def ultrachat_like(n: int) -> bytes:
    return b"".join(orjson.dumps({"prompt": f"q{i}", "messages": [
        {"role": "user", "content": f"question {i} " * (i % 7 + 1)},
        {"role": "assistant", "content": f"answer {i} ü " * (i % 11 + 1)}]}) + b"\n" for i in range(n))


@pytest.mark.parametrize("broken", [False, True])
def test_a_parallel_scan_over_ranged_blob_reads_stages_what_one_pass_stages(
    containers: tuple[BlobServiceClient, ContainerClient, ContainerClient], broken: bool,
) -> None:
    _, incoming, staged = containers
    data = ultrachat_like(3000) + (b"{broken\n" if broken else b"") + ultrachat_like(200)
    incoming.upload_blob("chats.jsonl", data)
    reports = {}
    for label, spread in (("one", Parallelism(workers=1)),
                          ("many", Parallelism(workers=2, min_bytes=0, piece_bytes=16 * 1024))):
        source = BlobSource(incoming.get_blob_client("chats.jsonl"))
        train, test = (BlockBlobSink(staged.get_blob_client(f"{label}/{side}.jsonl"))
                       for side in ("train", "test"))
        reports[label] = scan_upload(source, Limits(), train, test, parallel=spread)
    assert reports["many"].to_dict() == reports["one"].to_dict()
    names = sorted(b.name for b in staged.list_blobs())
    if broken:
        assert names == [] and not reports["one"].valid  # rejected: nothing staged, either way
        return
    assert names == ["many/test.jsonl", "many/train.jsonl", "one/test.jsonl", "one/train.jsonl"]
    for side in ("train", "test"):
        assert staged.download_blob(f"many/{side}.jsonl").readall() == \
            staged.download_blob(f"one/{side}.jsonl").readall()


def test_a_blob_overwritten_mid_scan_fails_instead_of_mixing_two_uploads(
    containers: tuple[BlobServiceClient, ContainerClient, ContainerClient],
) -> None:
    _, incoming, _ = containers
    blob = incoming.get_blob_client("chats.jsonl")
    blob.upload_blob(ultrachat_like(100))
    source = BlobSource(blob)  # the version seen first
    assert source.read_range(0, 10) == ultrachat_like(1)[:10]
    blob.upload_blob(ultrachat_like(120), overwrite=True)
    with pytest.raises(ResourceModifiedError):
        source.read_range(0, 10)
