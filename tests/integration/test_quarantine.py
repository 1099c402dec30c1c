"""Quarantine on Azure Blob Storage (Azurite): copy, verify, report, then delete - never lose the upload.

The rules are written once over the staging port (tests/unit/test_quarantine_rules.py runs them in memory);
here failures are injected at the HTTP level (the storage SDK's `raw_request_hook`, called for every
request), so the real SDK, the real emulator and the port's error translation run everything else.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import orjson
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline import PipelineRequest
from azure.storage.blob import BlobServiceClient

from devhost.azurite import Azurite
from shared.dataset import BlockBlobSink, Limits, Report, scan
from shared.staging import BlobRef, QuarantineError, destination_name, quarantine
from shared.staging.azure_blob import AzureBlobStore

pytestmark = pytest.mark.integration

BAD_UPLOAD = (b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
              b'{"messages": []}\n') * 50


class InjectedCrash(RuntimeError):
    pass


def fail_deletes(request: PipelineRequest) -> None:  # type: ignore[type-arg]
    """Simulates a crash between copy and delete: every DELETE fails before it is sent."""
    if request.http_request.method == "DELETE":
        raise InjectedCrash("the process died before deleting the original")


@pytest.fixture
def service(azurite: Azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def containers(service: BlobServiceClient) -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    incoming, rejected = f"in{suffix}", f"rj{suffix}"
    service.create_container(incoming)
    yield incoming, rejected
    for name in (incoming, rejected):
        with contextlib.suppress(ResourceNotFoundError):
            service.delete_container(name)


def upload(service: BlobServiceClient, container: str, name: str, data: bytes) -> Report:
    service.get_blob_client(container, name).upload_blob(data, overwrite=True)
    report = scan([data])
    assert not report.valid
    return report


def test_rejected_upload_moves_with_its_report(service: BlobServiceClient,
                                               containers: tuple[str, str]) -> None:
    incoming, rejected = containers
    name = "..\\team a\\chats é\x07.jsonl"  # traversal, space, non-ASCII, a control character
    report = upload(service, incoming, name, BAD_UPLOAD)
    moved = quarantine(AzureBlobStore(service), BlobRef(incoming, name), rejected, report)
    assert moved == destination_name(name, report.content_sha256)
    assert ".." not in moved.split("/")
    box = service.get_container_client(rejected)
    assert box.download_blob(moved).readall() == BAD_UPLOAD
    saved = Report.from_dict(orjson.loads(box.download_blob(f"{moved}.report.json").readall()))
    assert saved.error_count == report.error_count == 50 and not saved.valid
    assert "REJECTED" in box.download_blob(f"{moved}.report.txt").readall().decode()
    assert not service.get_blob_client(incoming, name).exists()


def test_crash_between_copy_and_delete_keeps_both(azurite: Azurite, service: BlobServiceClient,
                                                  containers: tuple[str, str]) -> None:
    incoming, rejected = containers
    report = upload(service, incoming, "chats.jsonl", BAD_UPLOAD)
    crashing = BlobServiceClient.from_connection_string(azurite.connection_string,
                                                        raw_request_hook=fail_deletes)
    with pytest.raises(InjectedCrash):
        quarantine(AzureBlobStore(crashing), BlobRef(incoming, "chats.jsonl"), rejected, report)
    moved = destination_name("chats.jsonl", report.content_sha256)
    assert service.get_blob_client(incoming, "chats.jsonl").download_blob().readall() == BAD_UPLOAD
    assert service.get_blob_client(rejected, moved).download_blob().readall() == BAD_UPLOAD
    # Running again (the event is redelivered) finishes the job: same destination, original gone.
    assert quarantine(AzureBlobStore(service), BlobRef(incoming, "chats.jsonl"), rejected, report) == moved
    assert not service.get_blob_client(incoming, "chats.jsonl").exists()
    assert service.get_blob_client(rejected, moved).download_blob().readall() == BAD_UPLOAD


def test_copy_failing_verification_keeps_the_original(service: BlobServiceClient,
                                                      containers: tuple[str, str]) -> None:
    incoming, rejected = containers
    report = upload(service, incoming, "chats.jsonl", BAD_UPLOAD)
    # The upload changes after it was scanned (same size, different bytes): the copy can't match the report.
    changed = BAD_UPLOAD.replace(b'"hi"', b'"HI"')
    service.get_blob_client(incoming, "chats.jsonl").upload_blob(changed, overwrite=True)
    with pytest.raises(QuarantineError, match="sha256"):
        quarantine(AzureBlobStore(service), BlobRef(incoming, "chats.jsonl"), rejected, report)
    assert service.get_blob_client(incoming, "chats.jsonl").download_blob().readall() == changed
    moved = destination_name("chats.jsonl", report.content_sha256)
    assert not service.get_blob_client(rejected, moved).exists()
    assert not service.get_blob_client(rejected, f"{moved}.report.json").exists()


def test_block_blob_sink_is_invisible_until_commit(service: BlobServiceClient,
                                                   containers: tuple[str, str]) -> None:
    incoming, _ = containers
    row = b'{"messages": [{"role": "user", "content": "q%d"}, {"role": "assistant", "content": "%s"}]}\n'
    rows = b"".join(row % (i, b"a" * 300) for i in range(2000))
    train_blob = service.get_blob_client(incoming, "staged/train.jsonl")
    test_blob = service.get_blob_client(incoming, "staged/test.jsonl")
    train = BlockBlobSink(train_blob, block_bytes=64 * 1024)
    test = BlockBlobSink(test_blob, block_bytes=64 * 1024)
    seen_before_commit: list[bool] = []

    def progress(_: int) -> None:
        seen_before_commit.append(train_blob.exists())

    report = scan([rows[i:i + 100_000] for i in range(0, len(rows), 100_000)], Limits(), train, test,
                  progress)
    assert report.valid and not any(seen_before_commit)
    staged = train_blob.download_blob().readall() + test_blob.download_blob().readall()
    assert len(staged.splitlines()) == 2000
    assert len(train_blob.get_block_list()[0]) > 5  # really written block by block


def test_block_blob_sink_abort_leaves_nothing(service: BlobServiceClient,
                                              containers: tuple[str, str]) -> None:
    incoming, _ = containers
    blob = service.get_blob_client(incoming, "staged/bad.jsonl")
    sink = BlockBlobSink(blob, block_bytes=1024)
    report = scan([BAD_UPLOAD], Limits(), sink)
    assert not report.valid
    assert not blob.exists()
