"""scan_upload over the staging port's BlobReader, on both backends (Blob Storage on Azurite, in memory): a
parallel scan over ranged reads stages the same blobs as one pass, and an upload overwritten mid-scan fails
the scan (nothing staged) instead of mixing two versions."""

from __future__ import annotations

import uuid

import orjson
import pytest
from azure.storage.blob import BlobServiceClient

from devhost.azurite import Azurite
from shared.dataset import Limits, Parallelism, scan_upload
from shared.staging import BlobChanged, BlobRef, BlobStore, open_blob, read_all
from shared.staging.azure_blob import AzureBlobStore
from shared.staging.memory import InMemoryBlobStore

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "azurite"])
def store(request: pytest.FixtureRequest) -> BlobStore:
    if request.param == "memory":
        return InMemoryBlobStore()
    azurite: Azurite = request.getfixturevalue("azurite")
    return AzureBlobStore(BlobServiceClient.from_connection_string(azurite.connection_string))


def ultrachat_like(n: int) -> bytes:
    return b"".join(orjson.dumps({"prompt": f"q{i}", "messages": [
        {"role": "user", "content": f"question {i} " * (i % 7 + 1)},
        {"role": "assistant", "content": f"answer {i} ü " * (i % 11 + 1)}]}) + b"\n" for i in range(n))


@pytest.mark.parametrize("broken", [False, True])
def test_a_parallel_scan_over_ranged_reads_stages_what_one_pass_stages(store: BlobStore,
                                                                        broken: bool) -> None:
    suffix = uuid.uuid4().hex[:10]
    upload, staged = BlobRef(f"in{suffix}", "chats.jsonl"), f"st{suffix}"
    store.put(upload, ultrachat_like(3000) + (b"{broken\n" if broken else b"") + ultrachat_like(200))
    reports = {}
    for label, spread in (("one", Parallelism(workers=1)),
                          ("many", Parallelism(workers=2, min_bytes=0, piece_bytes=16 * 1024))):
        train, test = (store.writer(BlobRef(staged, f"{label}/{side}.jsonl")) for side in ("train", "test"))
        reports[label] = scan_upload(open_blob(store, upload), Limits(), train, test, parallel=spread)
    assert reports["many"].to_dict() == reports["one"].to_dict()
    names = sorted(store.names(staged))
    if broken:
        assert names == [] and not reports["one"].valid  # rejected: nothing staged, either way
        return
    assert names == ["many/test.jsonl", "many/train.jsonl", "one/test.jsonl", "one/train.jsonl"]
    for side in ("train", "test"):
        assert read_all(store, BlobRef(staged, f"many/{side}.jsonl")) == \
            read_all(store, BlobRef(staged, f"one/{side}.jsonl"))


@pytest.mark.parametrize("workers", [1, 2])
def test_an_upload_overwritten_mid_scan_fails_and_stages_nothing(store: BlobStore, workers: int) -> None:
    suffix = uuid.uuid4().hex[:10]
    upload, staged = BlobRef(f"in{suffix}", "chats.jsonl"), f"st{suffix}"
    store.put(upload, ultrachat_like(2000))
    reader = open_blob(store, upload)  # the version seen first
    assert reader.read_range(0, 10) == ultrachat_like(1)[:10]
    store.put(upload, ultrachat_like(2100))
    train, test = (store.writer(BlobRef(staged, f"{side}.jsonl")) for side in ("train", "test"))
    with pytest.raises(BlobChanged):
        scan_upload(reader, Limits(), train, test,
                    parallel=Parallelism(workers=workers, min_bytes=0, piece_bytes=16 * 1024))
    assert list(store.names(staged)) == []
