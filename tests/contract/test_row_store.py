"""One contract, every row store: what the ledger's rules rely on, held against each backend.

`table` is Azure Table Storage on Azurite (the production backend); `memory` is the in-process store the
lifecycle's unit tests run on. Both must create-if-absent, compare-and-set on the ETag, query on the
service side, and refuse what the other would refuse.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from shared.runs import Conflict, Ledger, Run, State
from shared.runs.memory import InMemoryRowStore
from shared.runs.port import Row, RowExists, RowStore
from shared.runs.table import TableRowStore
from shared.settings import StorageSettings
from shared.storage import table_service

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("table", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> RowStore:
    if request.param == "memory":
        return InMemoryRowStore()
    storage = StorageSettings(connection_string=request.getfixturevalue("azurite").connection_string)
    return TableRowStore(table_service(storage), f"contract{uuid.uuid4().hex[:12]}")


def test_insert_then_get_returns_the_row_with_an_etag(store: RowStore) -> None:
    written = store.insert(Row("run", "r-1", {"state": "live", "note": "héllo ✓", "empty": ""}))
    assert written.etag
    read = store.get("run", "r-1")
    assert read is not None and read.columns == {"state": "live", "note": "héllo ✓", "empty": ""}
    assert read.etag == written.etag and (read.kind, read.key) == ("run", "r-1")


def test_a_second_insert_of_the_same_key_is_refused_and_changes_nothing(store: RowStore) -> None:
    store.insert(Row("run", "r-1", {"state": "live"}))
    with pytest.raises(RowExists):
        store.insert(Row("run", "r-1", {"state": "failed"}))
    read = store.get("run", "r-1")
    assert read is not None and read.columns["state"] == "live"
    store.insert(Row("lease", "r-1", {"holder": "x"}))  # the same key in another kind is another row


def test_a_missing_row_is_none(store: RowStore) -> None:
    assert store.get("run", "nope") is None


def test_replace_wins_only_with_the_current_etag(store: RowStore) -> None:
    first = store.insert(Row("run", "r-1", {"state": "submitted"}))
    second = store.replace(Row("run", "r-1", {"state": "running"}, first.etag))
    assert second.etag and second.etag != first.etag
    with pytest.raises(Conflict):
        store.replace(Row("run", "r-1", {"state": "failed"}, first.etag))  # a stale copy loses
    read = store.get("run", "r-1")
    assert read is not None and read.columns == {"state": "running"} and read.etag == second.etag


def test_replacing_a_row_that_is_not_there_is_a_conflict(store: RowStore) -> None:
    other = store.insert(Row("run", "r-1", {}))
    with pytest.raises(Conflict):
        store.replace(Row("run", "r-2", {"state": "x"}, other.etag))
    assert store.get("run", "r-2") is None


def test_replace_needs_the_etag_it_was_read_with(store: RowStore) -> None:
    store.insert(Row("run", "r-1", {}))
    with pytest.raises(ValueError, match="ETag"):
        store.replace(Row("run", "r-1", {"state": "x"}))


def test_only_one_of_many_concurrent_replaces_wins(store: RowStore) -> None:
    row = store.insert(Row("run", "r-1", {"lease": ""}))
    wins: list[Row] = []
    barrier = threading.Barrier(10)

    def take(i: int) -> Callable[[], None]:
        def go() -> None:
            barrier.wait()
            with contextlib.suppress(Conflict):
                wins.append(store.replace(Row("run", "r-1", {"lease": f"h{i}"}, row.etag)))
        return go

    threads = [threading.Thread(target=take(i)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    read = store.get("run", "r-1")
    assert read is not None and read.columns == wins[0].columns


def test_query_filters_by_kind_and_every_condition(store: RowStore) -> None:
    for key, state, endpoint in (("a", "live", "ep1"), ("b", "live", "ep2"), ("c", "deploying", "ep1"),
                                 ("d", "failed", "")):
        store.insert(Row("run", key, {"state": state, "endpoint": endpoint}))
    store.insert(Row("run", "e", {"state": "live"}))  # no endpoint column at all
    store.insert(Row("lease", "f", {"state": "live", "endpoint": "ep1"}))

    def keys(**where: str | tuple[str, ...]) -> list[str]:
        return sorted(r.key for r in store.query("run", where))

    assert keys() == ["a", "b", "c", "d", "e"]
    assert keys(state="live") == ["a", "b", "e"]
    assert keys(state=("live", "deploying")) == ["a", "b", "c", "e"]
    assert keys(state=("live", "deploying"), endpoint="ep1") == ["a", "c"]
    assert keys(endpoint="") == ["d"]
    assert keys(state="torn_down") == []
    assert [r.key for r in store.query("lease")] == ["f"]


def test_query_values_are_data_not_syntax(store: RowStore) -> None:
    store.insert(Row("run", "a", {"upload": "incoming/o'brien.jsonl"}))
    store.insert(Row("run", "b", {"upload": "incoming/other.jsonl"}))
    assert [r.key for r in store.query("run", {"upload": "incoming/o'brien.jsonl"})] == ["a"]
    assert list(store.query("run", {"upload": "x' or upload ne 'y"})) == []


@pytest.mark.parametrize("bad", [Row("run", "a/b", {}), Row("run", "a#b", {}), Row("run", "", {}),
                                 Row("run", "k", {"bad-name": "x"}), Row("run", "k", {"RowKey": "x"})])
def test_keys_and_columns_a_table_cannot_hold_are_refused_by_every_store(store: RowStore, bad: Row) -> None:
    with pytest.raises(ValueError):
        store.insert(bad)
    with pytest.raises(ValueError):
        list(store.query("run", {"bad name": "x"}))


def test_large_values_round_trip(store: RowStore) -> None:
    big = "x" * 30_000  # Table Storage allows 64 KiB per string property
    store.insert(Row("run", "r-1", {"history": big}))
    read = store.get("run", "r-1")
    assert read is not None and read.columns["history"] == big


def test_a_whole_run_record_round_trips_through_the_ledger(store: RowStore) -> None:
    ledger = Ledger(store, clock=lambda: T0)
    run = Run("run-full", State.VALIDATED, upload="incoming/chats.jsonl", upload_etag="0x1",
              content_sha256="ab" * 32, base_model="Phi-4", overrides={"lora_r": 16, "learning_rate": 2e-5},
              forced=True, rows=48, train_rows=45, test_rows=3, estimated_tokens=1200, warnings=0,
              errors=({"line": 2, "code": "no_assistant", "message": "no assistant turn"},),
              train_uri="http://x/staged/k/train.jsonl", test_uri="http://x/staged/k/test.jsonl",
              eval_rouge_l=0.5, baseline_rouge_l=None, torn_down_at=T0 - timedelta(hours=1),
              error="it's \"quoted\" — and unicode")
    created = ledger.create(run, note="48 rows")
    assert created is not None
    held = ledger.claim(created, "submit", timedelta(minutes=5))
    assert held is not None
    read = ledger.get("run-full")
    assert read is not None and read == held
    assert read.lease_until == T0 + timedelta(minutes=5) and read.overrides["learning_rate"] == 2e-5
