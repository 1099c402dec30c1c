"""The one platform port: everything the lifecycle asks of an ML platform.

Two adapters stand behind it with equal standing: `azureml` (azure-ai-ml, the production path) and `local`
(the embedded engine: a real LoRA fine-tune in a child process, an MLflow registry, local endpoints).
The vocabulary is Azure ML's (job statuses, endpoint/deployment/traffic), so the lifecycle reads the same
whichever adapter runs it.

Every mutating call is idempotent on its natural key (job name, model name+version, endpoint+deployment),
because every trigger that leads to it can fire twice. Nothing here waits for a long operation: a deployment
is begun (`begin_deployment`) and its provisioning state read (`deployment_status`) as often as the caller
likes, so no trigger holds the line for the 10-20 minutes a managed deployment takes to create.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from shared.evaluation.report import EvalReport


class JobStatus(StrEnum):
    """Azure ML job statuses (azure-ai-ml 1.35); the local adapter reports the same words.

    A member equals its word (`JobStatus.COMPLETED == "Completed"`), so `JobState.status` stays a string.
    """

    NOT_STARTED = "NotStarted"
    STARTING = "Starting"
    PROVISIONING = "Provisioning"
    PREPARING = "Preparing"
    QUEUED = "Queued"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    CANCEL_REQUESTED = "CancelRequested"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    NOT_RESPONDING = "NotResponding"
    PAUSED = "Paused"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, raw: str) -> JobStatus | None:
        """The status a word names, whatever its case ('failed' in some Azure ML samples); None if unknown."""
        return _BY_LOWER.get(raw.strip().lower())


_BY_LOWER = {status.value.lower(): status for status in JobStatus}
# Still going: the job may yet end either way. Paused and Unknown are neither going nor ended.
ACTIVE_STATUSES = frozenset({JobStatus.NOT_STARTED, JobStatus.STARTING, JobStatus.PROVISIONING,
                             JobStatus.PREPARING, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FINALIZING,
                             JobStatus.CANCEL_REQUESTED})
TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED,
                               JobStatus.NOT_RESPONDING})

class Provisioning(StrEnum):
    """A deployment's provisioning state, in Azure ML's words (`DeploymentProvisioningState`).

    Creating / Updating (and Scaling, Deleting) are on the way; Succeeded, Failed and Canceled are final.
    """

    CREATING = "Creating"
    UPDATING = "Updating"
    SCALING = "Scaling"
    DELETING = "Deleting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @classmethod
    def parse(cls, raw: str | None) -> Provisioning:
        """The state a word names, whatever its case; an unknown or missing word counts as still Creating
        (a state we cannot read is never taken for a final one)."""
        return _PROVISIONING_BY_LOWER.get((raw or "").strip().lower(), cls.CREATING)

    @property
    def final(self) -> bool:
        return self in FINAL_PROVISIONING


_PROVISIONING_BY_LOWER = {state.value.lower(): state for state in Provisioning}
FINAL_PROVISIONING = frozenset({Provisioning.SUCCEEDED, Provisioning.FAILED, Provisioning.CANCELED})

# Tags that mark an endpoint as ours; the idle sweep never touches an endpoint without MANAGED_TAG.
MANAGED_TAG = "autopilot-managed"
KEEP_TAG = "autopilot-keep"
RUN_TAG = "autopilot-run-id"
HASH_TAG = "autopilot-content-sha256"
PROJECT_TAG = "autopilot-project"  # the project a job trains for (its endpoint is the project's)


class PlatformError(Exception):
    """A platform call failed. `transient` says whether retrying the same call may succeed."""

    transient: bool = False


def check_name(kind: str, name: str) -> str:
    """`name` if Azure ML accepts it for an endpoint or deployment, else PlatformError. Every adapter keeps
    Azure's rule (shared.platforms.endpoint_names.ENDPOINT_NAME_RULE: 3-32 letters, digits or '-', a letter
    first, no '-' last), so a name that works locally works on Azure."""
    from shared.platforms.endpoint_names import ENDPOINT_NAME_RULE

    if not ENDPOINT_NAME_RULE.fullmatch(name):
        raise PlatformError(f"{kind} name {name!r} is not valid on Azure ML: 3-32 characters, a letter "
                            "first, then letters, digits or '-', not ending with '-'")
    return name


class TransientPlatformError(PlatformError):
    transient = True


class NotFoundError(PlatformError):
    """The job, model, endpoint or deployment named does not exist."""


class BaseModelRefused(PlatformError):
    """This platform cannot fine-tune the base model named (retired, archived, unknown, not loadable)."""


class RequestRefused(PlatformError):
    """The deployment refused the request itself (a client error: 400/422); `status` is its HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ActivityUnavailable(PlatformError):
    """The idle signal could not be read; the sweep must treat the endpoint as in use."""


@dataclass(frozen=True)
class JobSpec:
    """A fine-tune job, as the lifecycle asks for it; each adapter translates it to its own job.

    `name` is deterministic per run, so a second submit of the same run finds the first job.
    `train_uri`/`test_uri` are the staged blobs' URLs.
    `parameters` are the run's own choices in the component's vocabulary (settings' FINETUNE_* and the
    manifest); each adapter resolves shared.finetune.DEFAULTS ← the model's defaults ← these.
    `start_from`: a registered fine-tune of `base_model` to train further (a manifest's `"start_from":
    "live"`), or None to start from the base model; `lineage` is the chain of models it came from.
    """

    name: str
    run_id: str
    display_name: str
    base_model: str
    train_uri: str
    test_uri: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    experiment: str = "finetune-autopilot"
    start_from: ModelRef | None = None
    lineage: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSpec:
        """Read back `dataclasses.asdict(spec)` (as a job's spec.json holds it)."""
        fields = dict(data)
        start = fields.get("start_from")
        fields["start_from"] = ModelRef(**start) if start else None
        fields["lineage"] = tuple(fields.get("lineage") or ())
        return cls(**fields)


@dataclass(frozen=True)
class TrainingSupport:
    """What the platform's fine-tune honours of the chat format (OpenAI's): `per_turn_weights`, whether a
    `"weight": 0` assistant turn is left out of the loss; `tool_calling`, whether `tools`, `tool_calls` and
    `tool` messages are trained as such. What it cannot honour is refused at upload, never trained in
    silence."""

    per_turn_weights: bool
    tool_calling: bool


@dataclass(frozen=True)
class JobState:
    """A job as the platform reports it."""

    name: str
    status: str
    error: str | None = None
    studio_url: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str


@dataclass(frozen=True)
class EndpointInfo:
    """An online endpoint with the facts the sweep and the deploy step need."""

    name: str
    tags: Mapping[str, str]
    created_at: datetime | None
    traffic: Mapping[str, int]
    deployments: tuple[str, ...] = ()
    scoring_uri: str | None = None
    # When the newest deployment was created: the sweep's grace period counts from it.
    last_deployed_at: datetime | None = None


@dataclass(frozen=True)
class EndpointAccess:
    """How to call an endpoint directly, as `az ml online-endpoint get-credentials` tells it: its scoring URI
    and key (every adapter's endpoints use key auth: `Authorization: Bearer KEY`).

    `key` is a secret: it is left out of repr, never logged, and shown only by a command whose purpose is to
    show it. `key_hint` says how a user reads the key themselves (a file, an `az` command), so a command can
    point at it without printing it. `openai_base_url` is the endpoint's OpenAI-compatible base (`.../v1`)
    where it serves one, else None.
    """

    scoring_uri: str
    key: str = field(repr=False)
    key_hint: str = ""
    openai_base_url: str | None = None


@dataclass(frozen=True)
class DeploymentStatus:
    """One deployment's provisioning as the platform reports it now.

    `model` is what the deployment serves (None where the platform does not say); `error` is the platform's
    reason when it ended Failed or Canceled, or a note while it waits (say, for its endpoint to be created).
    """

    endpoint: str
    deployment: str
    provisioning: Provisioning
    model: ModelRef | None = None
    error: str | None = None

    @property
    def final(self) -> bool:
        return self.provisioning.final

    @property
    def succeeded(self) -> bool:
        return self.provisioning == Provisioning.SUCCEEDED


@dataclass(frozen=True)
class TrainingRecord:
    """What a job recorded while it trained, as the status page shows it.

    `loss_curve`: the training loss per logged step; `validation_loss`: the loss on the validation split per
    evaluation (step, value); `evaluation`: base model vs fine-tuned on the test split, where the platform's
    job writes one. `missing` names each figure this platform's job does not record, with why, so the page
    says so instead of leaving a gap.
    """

    loss_curve: tuple[tuple[int, float], ...] = ()
    validation_loss: tuple[tuple[int, float], ...] = ()
    evaluation: EvalReport | None = None
    missing: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Platform(Protocol):
    """What the lifecycle needs from an ML platform. See the module docstring for the rules."""

    def check_base_model(self, reference: str) -> None:
        """Raise BaseModelRefused when `reference` cannot be fine-tuned here, saying why and what to use.

        Read-only and quick (no model is loaded or prepared): the ingest step asks before it stages anything,
        so a wrong BASE_MODEL is refused before the data is copied or a job is submitted.
        """
        ...

    def training_support(self) -> TrainingSupport:
        """What this platform's fine-tune honours of the chat format; static, no call leaves the process."""
        ...

    def submit(self, spec: JobSpec) -> JobState:
        """Start the fine-tune job, or return the existing job of the same name."""
        ...

    def job_status(self, job_name: str) -> JobState:
        """The job's current status (raises NotFoundError if there is no such job)."""
        ...

    def training_record(self, job_name: str) -> TrainingRecord:
        """What the job has recorded so far (loss per step, validation loss, evaluation), read-only; empty
        while it has logged nothing yet. NotFoundError if there is no such job."""
        ...

    def register(self, job_name: str, model_name: str, tags: Mapping[str, str],
                 description: str = "") -> ModelRef:
        """Register the job's trained model; a second call for the same job returns the same version."""
        ...

    def begin_deployment(self, model: ModelRef, endpoint: str, deployment: str,
                         tags: Mapping[str, str]) -> DeploymentStatus:
        """Start creating the deployment at 0 % traffic (and the endpoint, with key auth and `tags`, if
        needed); return at once with its provisioning state, without waiting for it.

        Idempotent: a deployment of that name already serving (or creating) the same model is not started
        again, its current state is returned; one with another model is updated to this one. While the
        endpoint itself is still being created the deployment cannot be requested yet: the state is then
        Creating, and a later call (or `deployment_status` raising NotFoundError) says to call again.
        Raises NotFoundError if the model is not registered.
        """
        ...

    def deployment_status(self, endpoint: str, deployment: str) -> DeploymentStatus:
        """The deployment's provisioning state now; NotFoundError if the endpoint or deployment does not
        exist (deleted, or not requested yet because its endpoint was still being created)."""
        ...

    def score(self, endpoint: str, payload: Mapping[str, Any], deployment: str | None = None) -> Any:
        """POST the seed's scoring payload to the endpoint (or straight to one deployment); a deployment that
        has not Succeeded does not answer (PlatformError)."""
        ...

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> None:
        """Set the endpoint's traffic split; percentages sum to 100 (or 0 for no traffic). Traffic goes only
        to deployments that exist and Succeeded (PlatformError otherwise)."""
        ...

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        """Delete one deployment (one still provisioning too: that cancels it); a missing one is not an
        error. A deployment that takes traffic is refused (PlatformError)."""
        ...

    def delete_endpoint(self, endpoint: str) -> None:
        """Delete the endpoint and its deployments; the registered model stays. Missing is not an error."""
        ...

    def get_endpoint(self, endpoint: str) -> EndpointInfo | None:
        """The endpoint, or None if it does not exist."""
        ...

    def list_endpoints(self) -> list[EndpointInfo]:
        """All endpoints the platform holds (the sweep filters to ours by MANAGED_TAG)."""
        ...

    def endpoint_access(self, endpoint: str) -> EndpointAccess:
        """How a user calls the endpoint directly: its scoring URI and key, and how to read the key without
        this app printing it (what `autopilot endpoint credentials` shows). Read-only. NotFoundError if the
        endpoint does not exist or has no scoring URI yet."""
        ...

    def endpoint_activity(self, endpoint: str) -> datetime | None:
        """Time of the endpoint's last scored request (None if it never served one).

        Raises ActivityUnavailable when the signal cannot be read.
        """
        ...

    def chat(self, endpoint: str, deployment: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """One OpenAI chat completion (`request` as OpenAI's API takes it, `stream` ignored) from the named
        deployment, straight to it whatever the traffic split (the front door pins the live one).

        NotFoundError if the endpoint or deployment does not exist (asleep), RequestRefused if the deployment
        refused the request, TransientPlatformError if it did not answer.
        """
        ...

    def chat_stream(self, endpoint: str, deployment: str, request: Mapping[str, Any]) -> Iterator[str]:
        """The same answer as server-sent events (`data: {chat.completion.chunk}` lines, then `data: [DONE]`),
        as OpenAI streams it. Errors before the first event are raised as by `chat`."""
        ...
