"""One contract, every staging backend: the blob operations the lifecycle relies on, held against each.

`azure` is Azure Blob Storage on Azurite (the production backend); `memory` is the in-process store the
lifecycle's unit tests run on. Reads are pinned to the version inspected, staged writes appear whole or not
at all, copies and deletes act only on the version named.
"""

from __future__ import annotations

import uuid

import pytest

from shared.settings import StorageSettings
from shared.staging import BlobChanged, BlobMissing, BlobRef, BlobStore, open_blob, read_all
from shared.staging.azure_blob import AzureBlobStore
from shared.staging.memory import InMemoryBlobStore
from shared.storage import blob_service

DATA = b"".join(b'{"messages": [{"role": "user", "content": "q%d"}]}\n' % i for i in range(2000))


@pytest.fixture(params=["memory", pytest.param("azure", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> BlobStore:
    if request.param == "memory":
        return InMemoryBlobStore()
    storage = StorageSettings(connection_string=request.getfixturevalue("azurite").connection_string)
    return AzureBlobStore(blob_service(storage))


@pytest.fixture
def box() -> str:
    """A container of this test's own (created by the store on first write)."""
    return f"c{uuid.uuid4().hex[:12]}"


def test_put_then_properties_and_ranged_reads(store: BlobStore, box: str) -> None:
    blob = BlobRef(box, "team a/chats é.jsonl")
    written = store.put(blob, DATA, "application/jsonl", {"force": "true"})
    info = store.properties(blob)
    assert info is not None and info.size == len(DATA) and info.etag == written.etag
    assert info.metadata == {"force": "true"}
    # The upload's own time in storage orders runs (issue 24, item 4): every backend says it.
    assert info.uploaded_at is not None and info.uploaded_at.tzinfo is not None
    assert store.read(blob, 0, 10, etag=info.etag) == DATA[:10]
    assert store.read(blob, len(DATA) - 5, 100, etag=info.etag) == DATA[-5:]  # fewer at the end


def test_a_missing_blob_has_no_properties_and_cannot_be_opened(store: BlobStore, box: str) -> None:
    assert store.properties(BlobRef(box, "nope.jsonl")) is None
    with pytest.raises(BlobMissing):
        open_blob(store, BlobRef(box, "nope.jsonl"))


def test_a_reader_streams_one_version_and_notices_an_overwrite(store: BlobStore, box: str) -> None:
    blob = BlobRef(box, "chats.jsonl")
    store.put(blob, DATA)
    reader = open_blob(store, blob)
    assert reader.size == len(DATA)
    assert b"".join(reader.chunks(chunk_bytes=7_000)) == DATA
    assert reader.read_range(100, 50) == DATA[100:150] and reader.read_range(len(DATA), 10) == b""
    assert len(list(reader.lines())) == 2000
    store.put(blob, DATA.upper())
    with pytest.raises(BlobChanged):
        reader.read_range(0, 10)
    assert read_all(store, blob) == DATA.upper()


def test_a_staged_file_appears_whole_on_close_and_never_on_abort(store: BlobStore, box: str) -> None:
    staged, dropped = BlobRef(box, "k/train.jsonl"), BlobRef(box, "k/test.jsonl")
    sink = store.writer(staged)
    for i in range(0, len(DATA), 10_000):
        sink.write(DATA[i:i + 10_000])
        assert store.properties(staged) is None  # nothing visible before the commit
    sink.close()
    assert read_all(store, staged) == DATA
    other = store.writer(dropped)
    other.write(DATA)
    other.abort()
    assert store.properties(dropped) is None


def test_names_list_a_prefix_in_name_order(store: BlobStore, box: str) -> None:
    for name in ("team/b.jsonl", "team/a.manifest.json", "team/sub/c.jsonl", "other.jsonl"):
        store.put(BlobRef(box, name), b"{}")
    assert list(store.names(box, "team/")) == ["team/a.manifest.json", "team/b.jsonl", "team/sub/c.jsonl"]
    assert len(list(store.names(box))) == 4
    assert list(store.names(f"{box}none")) == []  # a missing container lists nothing


def test_copy_takes_exactly_the_version_named(store: BlobStore, box: str) -> None:
    source, target = BlobRef(box, "in/chats.jsonl"), BlobRef(f"{box}r", "out/chats.jsonl")
    first = store.put(source, DATA)
    copied = store.copy(source, target, source_etag=first.etag)
    assert copied.size == len(DATA) and read_all(store, target) == DATA
    store.put(source, b"newer upload under the same name\n")
    with pytest.raises(BlobChanged):
        store.copy(source, BlobRef(f"{box}r", "out/again.jsonl"), source_etag=first.etag)
    assert store.properties(BlobRef(f"{box}r", "out/again.jsonl")) is None


def test_delete_acts_only_on_the_version_named_and_missing_is_fine(store: BlobStore, box: str) -> None:
    blob = BlobRef(box, "chats.jsonl")
    old = store.put(blob, DATA)
    store.put(blob, DATA + DATA)
    with pytest.raises(BlobChanged):
        store.delete(blob, etag=old.etag)
    assert store.properties(blob) is not None
    current = store.properties(blob)
    assert current is not None
    store.delete(blob, etag=current.etag)
    assert store.properties(blob) is None
    store.delete(blob)  # already gone: not an error
    store.delete(BlobRef(f"{box}none", "x"))


def test_a_url_names_its_blob(store: BlobStore, box: str) -> None:
    blob = BlobRef(box, "k/train set é.jsonl")
    store.put(blob, b"x")
    assert store.ref(store.url(blob)) == blob
    with pytest.raises(ValueError):
        store.ref("not a url")
