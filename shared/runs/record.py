"""The run record: one upload's journey from blob to live endpoint, its states, and what may move it.

Every field the lifecycle stores is declared here with its type; the ledger refuses a key that is not one of
them, and a value of the wrong type, before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.finetune import ParameterError, resolve_parameters


class State(StrEnum):
    RECEIVED = "received"
    VALIDATED = "validated"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    REGISTERED = "registered"
    DEPLOYING = "deploying"
    LIVE = "live"
    ROLLED_BACK = "rolled_back"
    TORN_DOWN = "torn_down"
    SUPERSEDED = "superseded"  # a newer run went live on its endpoint before this one's turn to deploy came
    UNHEALTHY = "unhealthy"  # live, but its endpoint stopped answering its health check
    WAITING = "waiting"  # a manifest whose files are not all there yet (its own record, not a run's)
    ARRIVED = "arrived"  # a waiting manifest's files all came: the run it named carries on under its own id


# The state machine. A transition not listed here is refused, so a stale or out-of-order event cannot move
# a run backwards (e.g. a late "Running" after "Completed"). README's state diagram is checked against it.
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.VALIDATED, State.REJECTED, State.DUPLICATE}),
    State.VALIDATED: frozenset({State.SUBMITTED, State.FAILED}),
    State.SUBMITTED: frozenset({State.RUNNING, State.SUCCEEDED, State.FAILED, State.CANCELED}),
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED}),
    State.SUCCEEDED: frozenset({State.REGISTERED, State.FAILED}),
    State.REGISTERED: frozenset({State.DEPLOYING, State.FAILED, State.SUPERSEDED}),
    State.DEPLOYING: frozenset({State.LIVE, State.ROLLED_BACK}),
    State.LIVE: frozenset({State.TORN_DOWN, State.ROLLED_BACK, State.UNHEALTHY}),
    State.UNHEALTHY: frozenset({State.LIVE, State.TORN_DOWN, State.DEPLOYING}),
    State.ROLLED_BACK: frozenset({State.DEPLOYING}),
    State.TORN_DOWN: frozenset({State.DEPLOYING}),
    State.SUPERSEDED: frozenset({State.DEPLOYING}),
    State.REJECTED: frozenset(),
    State.DUPLICATE: frozenset(),
    State.FAILED: frozenset({State.VALIDATED}),
    State.CANCELED: frozenset({State.VALIDATED}),
    State.WAITING: frozenset({State.ARRIVED, State.REJECTED}),
    State.ARRIVED: frozenset(),
}

# What an operator may do (API, CLI and status page all ask `can_redeploy` / `can_retry`).
REDEPLOYABLE = frozenset({State.TORN_DOWN, State.ROLLED_BACK, State.SUPERSEDED, State.UNHEALTHY})
# A run serving its endpoint's traffic (an unhealthy one still holds it, though nothing answers).
SERVING = frozenset({State.LIVE, State.UNHEALTHY})
RETRYABLE = frozenset({State.FAILED, State.CANCELED})


class IllegalTransition(Exception):
    """The run is not in a state this step may leave from (a stale or duplicate trigger)."""


@dataclass(frozen=True)
class Run:
    """One run. Only the ledger writes it: by compare-and-set on `etag`, which guards every write."""

    run_id: str
    state: State
    # The upload, and what made this run differ from another on the same data.
    project: str = ""  # the first folder under incoming/ ('' on runs recorded before projects: the default)
    upload: str = ""  # container/name of the uploaded (train) blob
    upload_etag: str = ""
    content_sha256: str = ""
    test_upload: str = ""  # container/name of a manifest's test file
    manifest: str = ""
    waiting_for: tuple[str, ...] = ()  # a waiting manifest's files not there yet
    run_name: str = ""  # a manifest's name for the run: the job's and the model's, instead of the file's
    tags: Mapping[str, str] = field(default_factory=dict)  # a manifest's tags, added to the job's
    base_model: str = ""
    overrides: Mapping[str, Any] = field(default_factory=dict)  # the manifest's fine-tune parameters
    # The project's own settings (its project.json when the upload came; None: the app setting).
    idle_ttl_seconds: float | None = None
    eval_gate_max_drop: float | None = None
    smoke_conversations: int | None = None
    forced: bool = False  # blob metadata force=true: train even if the content was trained before
    uploaded_at: datetime | None = None  # when its files were in storage (orders runs: "uploaded later")
    start_from: str = ""  # a manifest's "live": train the endpoint's live fine-tune further, not the base
    # What the job started from ("name:version" of the live fine-tune, "" for the base model), and the chain
    # of models this run's comes from: base model → earlier fine-tunes (" → " between them).
    started_from: str = ""
    lineage: str = ""
    # The scan: counts of a valid upload, or a rejected one's errors; staged files' URLs.
    rows: int | None = None
    train_rows: int | None = None
    test_rows: int | None = None
    test_in_train: int | None = None  # a manifest's test conversations that are also in its training file
    estimated_tokens: int | None = None
    warnings: int | None = None
    error_count: int | None = None
    errors: tuple[Mapping[str, Any], ...] = ()  # the first few of a rejected upload's errors
    quarantined_to: str = ""
    # Screening: the policy the upload was scanned under ({"secrets": "reject", ...}) and findings by kind.
    screening: Mapping[str, str] = field(default_factory=dict)
    sensitive: Mapping[str, int] = field(default_factory=dict)
    duplicate_of: str = ""
    train_uri: str = ""
    test_uri: str = ""
    # The job and its model.
    job_name: str = ""
    job_url: str = ""
    attempt: int = 1
    redeploys: int = 0  # operator redeploys asked for so far (each one's failure is alerted on its own)
    model_name: str = ""
    model_version: str = ""
    # The deployment and its gate.
    endpoint: str = ""
    deployment: str = ""
    scoring_uri: str = ""
    smoke_reply: str = ""
    eval_rouge_l: float | None = None
    baseline_rouge_l: float | None = None
    replaced: str = ""  # the deployment this one took the traffic from
    # The step queue: a message is current only while it carries the run's `step_seq`; each step that
    # completes moves it on, so a duplicate or a late message finds itself stale and does nothing.
    step_seq: int = 0
    deploy_started_at: datetime | None = None  # when the current deployment was begun (the stuck clock)
    provisioning: str = ""  # its provisioning state at the last poll (Creating, Succeeded, ...)
    polls: int = 0  # polls of the current deployment so far (each waits longer)
    # The teardown: what the endpoint billed, and what the sweep saved.
    endpoint_hours: float | None = None
    idle_hours: float | None = None
    hours_saved: float | None = None
    cost_reference_hours: float | None = None
    teardowns: int = 0
    wakes: int = 0  # times a request through the front door woke the run's model from sleep
    torn_down_at: datetime | None = None
    error: str = ""  # why the run failed, was rejected or rolled back
    # Kept by the ledger itself, never passed to it as a change.
    history: tuple[Mapping[str, str], ...] = ()
    alerts: tuple[str, ...] = ()
    lease_step: str = ""
    lease_until: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    etag: str | None = None

    def lease_live(self, now: datetime) -> bool:
        """Another handler holds a step of this run and has not yet run out of time."""
        return bool(self.lease_step) and self.lease_until is not None and self.lease_until > now


# Every id the lifecycle makes (shared/lifecycle/naming.py): runs (content-keyed, a forced re-run suffixed),
# rejected and duplicate records, waiting manifests. Anything else is no run: refused before any storage call.
RUN_ID_SHAPE = re.compile(r"(run-[0-9a-f]{12}(-[0-9a-f]{6})?|(rej|dup|wait)-[0-9a-f]{16})")


def is_run_id(text: str) -> bool:
    """Whether `text` has the shape of a run id (so it is worth looking up)."""
    return RUN_ID_SHAPE.fullmatch(text) is not None


# What the ledger keeps itself; a step's changes may not name these.
BOOKKEEPING = frozenset({"run_id", "state", "history", "alerts", "lease_step", "lease_until", "created_at",
                         "updated_at", "etag"})


def can_redeploy(run: Run) -> bool:
    """A torn-down or rolled-back run whose model is registered can be deployed again in one step."""
    return run.state in REDEPLOYABLE and bool(run.model_name)


def can_retry(run: Run) -> bool:
    """A failed or canceled run whose data was staged can be submitted again as a new job, unless its own
    fine-tune parameters would fail it the same way."""
    return run.state in RETRYABLE and bool(run.train_uri) and retry_problem(run) is None


def retry_problem(run: Run) -> str | None:
    """Why a retry of this run would fail as it did (its parameters break a rule), or None."""
    try:
        resolve_parameters({}, run.overrides)
    except ParameterError as exc:
        return f"{exc}; upload the data again with corrected parameters"
    return None


def operator_actions(run: Run) -> list[str]:
    """The operator actions this run allows, by name (the API's links, the page, the CLI)."""
    return [name for name, allowed in (("redeploy", can_redeploy(run)), ("retry", can_retry(run))) if allowed]
