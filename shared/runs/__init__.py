"""Runs: the run record, its state machine and the ledger's rules, over a row store with two backends.

    record.py   Run (typed, frozen), State, TRANSITIONS, can_redeploy / can_retry
    ledger.py   Ledger: create, get, find, claim (lease), advance, update, mark_alerted
    port.py     the store port: RowStore (insert, get, query, replace-if-ETag-matches) and its errors
    table.py    TableRowStore: Azure Table Storage (Azurite locally)
    memory.py   InMemoryRowStore: the same contract in process memory
    codec.py    Run <-> row
"""

from shared.runs.codec import MalformedRun
from shared.runs.ledger import Ledger
from shared.runs.port import Conflict, RowStore, StoreError, StoreUnavailable
from shared.runs.record import (
    REDEPLOYABLE,
    RETRYABLE,
    SERVING,
    TRANSITIONS,
    IllegalTransition,
    Run,
    State,
    can_redeploy,
    can_retry,
    operator_actions,
)

__all__ = ["REDEPLOYABLE", "RETRYABLE", "SERVING", "TRANSITIONS", "Conflict", "IllegalTransition", "Ledger",
           "MalformedRun", "RowStore", "Run", "State", "StoreError", "StoreUnavailable", "can_redeploy",
           "can_retry", "operator_actions"]
