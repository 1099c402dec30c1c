"""What only the Table Storage backend can show: storage failures arrive as the store's own errors, and
transient ones are retried by the SDK underneath the rules."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.core.exceptions import AzureError, ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from devhost.azurite import Azurite, free_port
from shared.azurite import azurite_connection_string
from shared.runs import Ledger, Run, State, StoreError, StoreUnavailable
from shared.runs.port import Row
from shared.runs.table import TableRowStore

pytestmark = pytest.mark.integration


def test_an_unreachable_table_service_is_store_unavailable() -> None:
    closed = azurite_connection_string(table=free_port())  # nothing listens there
    store = TableRowStore(TableServiceClient.from_connection_string(closed, retry_total=0), "runs")
    for call in (lambda: store.insert(Row("run", "k", {})), lambda: store.get("run", "k"),
                 lambda: list(store.query("run", {"state": "live"}))):
        with pytest.raises(StoreUnavailable, match="unreachable or busy") as raised:
            call()
        assert not isinstance(raised.value, AzureError)


def test_a_refused_request_is_a_store_error_naming_what_was_asked(azurite: Azurite) -> None:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    with pytest.raises(StoreError, match="create table 1bad"):
        TableRowStore(service, "1bad").get("run", "k")  # not a valid table name
    store = TableRowStore(service, f"t{uuid.uuid4().hex[:10]}")
    with pytest.raises(StoreError, match="create run/k") as raised:
        store.insert(Row("run", "k", {"history": "x" * 70_000}))  # over 64 KiB in one property
    assert not isinstance(raised.value, StoreUnavailable)


class FlakyTransport(RequestsTransport):
    """Drops every third write to the table service, as a flaky network would."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.dropped = 0

    def send(self, request: Any, **kwargs: Any) -> Any:
        if request.method in ("PUT", "POST", "MERGE", "PATCH"):
            self.writes += 1
            if self.writes % 3 == 0:
                self.dropped += 1
                raise ServiceResponseError("connection reset (injected)")
        return super().send(request, **kwargs)


def test_transient_write_errors_are_retried_by_the_sdk_under_the_rules(azurite: Azurite) -> None:
    transport = FlakyTransport()
    service = TableServiceClient.from_connection_string(azurite.connection_string, transport=transport,
                                                        retry_backoff_factor=0.01)
    ledger = Ledger(TableRowStore(service, f"t{uuid.uuid4().hex[:10]}"))
    run = ledger.create(Run("run-1", State.VALIDATED))
    assert run is not None
    for state in (State.SUBMITTED, State.RUNNING, State.SUCCEEDED, State.REGISTERED, State.DEPLOYING,
                  State.LIVE):
        run = ledger.advance(run, state)
    stored = ledger.get("run-1")
    assert transport.dropped >= 2 and stored is not None and stored.state == State.LIVE
    assert [h["state"] for h in stored.history][-1] == "live"
