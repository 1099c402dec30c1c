"""The quarantine rules over the in-memory staging store: the upload is deleted only after its copy is
verified, and only the version that was scanned; any failure before that leaves the original in place."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.dataset import Report, scan
from shared.staging import BlobChanged, BlobRef, QuarantineError, destination_name, quarantine, read_all
from shared.staging.memory import InMemoryBlobStore

BAD = (b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
       b'{"messages": []}\n') * 5
UPLOAD = BlobRef("incoming", "team/chats.jsonl")


@pytest.fixture
def store() -> InMemoryBlobStore:
    store = InMemoryBlobStore()
    store.put(UPLOAD, BAD)
    return store


def report_of(data: bytes) -> Report:
    report = scan([data])
    assert not report.valid
    return report


class CrashBeforeDelete:
    """The store, as seen by a process that dies between the verified copy and the delete of the original."""

    def __init__(self, inner: InMemoryBlobStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete(self, blob: BlobRef, *, etag: str | None = None) -> None:
        if blob == UPLOAD:
            raise RuntimeError("the process died before deleting the original")
        self.inner.delete(blob, etag=etag)


def names(store: InMemoryBlobStore, container: str) -> Iterator[str]:
    return store.names(container)


def test_the_upload_moves_with_both_reports(store: InMemoryBlobStore) -> None:
    report = report_of(BAD)
    moved = quarantine(store, UPLOAD, "rejected", report)
    assert moved == destination_name(UPLOAD.name, report.content_sha256)
    assert read_all(store, BlobRef("rejected", moved)) == BAD
    assert sorted(names(store, "rejected")) == [moved, f"{moved}.report.json", f"{moved}.report.txt"]
    assert store.properties(UPLOAD) is None


def test_a_crash_between_copy_and_delete_keeps_both_and_running_again_finishes(
        store: InMemoryBlobStore) -> None:
    report = report_of(BAD)
    with pytest.raises(RuntimeError, match="died"):
        quarantine(CrashBeforeDelete(store), UPLOAD, "rejected", report)
    moved = destination_name(UPLOAD.name, report.content_sha256)
    assert read_all(store, UPLOAD) == BAD and read_all(store, BlobRef("rejected", moved)) == BAD
    assert quarantine(store, UPLOAD, "rejected", report) == moved  # the redelivered event
    assert store.properties(UPLOAD) is None


def test_an_upload_changed_since_the_scan_is_not_moved(store: InMemoryBlobStore) -> None:
    report = report_of(BAD)
    changed = BAD.replace(b'"hi"', b'"HI"')  # same size, other bytes
    store.put(UPLOAD, changed)
    with pytest.raises(QuarantineError, match="sha256"):
        quarantine(store, UPLOAD, "rejected", report)
    assert read_all(store, UPLOAD) == changed and list(names(store, "rejected")) == []


def test_an_overwrite_between_copy_and_delete_keeps_the_newer_upload(store: InMemoryBlobStore) -> None:
    report = report_of(BAD)

    class OverwriteAfterCopy(CrashBeforeDelete):
        def delete(self, blob: BlobRef, *, etag: str | None = None) -> None:
            if blob == UPLOAD:
                store.put(UPLOAD, b"a newer upload\n")  # lands just before the delete
            self.inner.delete(blob, etag=etag)

    with pytest.raises(BlobChanged):
        quarantine(OverwriteAfterCopy(store), UPLOAD, "rejected", report)
    assert read_all(store, UPLOAD) == b"a newer upload\n"


def test_a_missing_upload_is_a_quarantine_error(store: InMemoryBlobStore) -> None:
    with pytest.raises(QuarantineError, match="gone"):
        quarantine(store, BlobRef("incoming", "nope.jsonl"), "rejected", report_of(BAD))
