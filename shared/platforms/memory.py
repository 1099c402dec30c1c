"""The in-memory platform: the lifecycle's rule tests and the in-memory world run on it; it is held to the
port's contract beside the real adapters (tests/contract/test_platform_port.py), as the in-memory row store,
blob store and queue are held to theirs.

It keeps the port's rules as strictly as the real adapters: a model is registered only from a completed job,
only a registered model is deployed, new deployments start at 0 %, traffic goes only to existing deployments
that Succeeded, a deployment answers only once it Succeeded, a deployment that serves cannot be deleted, and
asking about a missing endpoint's activity is NotFoundError. It counts every effect, so tests assert on what
happened at the platform, not on the ledger alone.

Deployments take time, as on Azure: a begun deployment is Creating for `provisioning_time` on the platform's
clock, then Succeeded (or whatever `script_deployment` said: Failed with a reason, or Creating for ever).
Deleting a deployment that is not final is counted apart (`deleted_unfinished`), so a test can say that only
the stuck-deployment rule ever does it.

Faults are injected per operation (optionally for one endpoint): `fail("deploy", times=2)` makes the next two
calls raise a transient error; `fail("deploy", permanent=True)` a permanent one; `error=` a given one, e.g.
`fail("endpoint_activity", target="ep", error=ActivityUnavailable(...))`. `after(operation, hook)` runs a hook
once, right after that operation (a request landing while the sweep decides).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.platforms import chat
from shared.platforms.port import (
    BaseModelRefused,
    DeploymentStatus,
    EndpointAccess,
    EndpointInfo,
    JobSpec,
    JobState,
    JobStatus,
    ModelRef,
    NotFoundError,
    PlatformError,
    Provisioning,
    TrainingRecord,
    TrainingSupport,
    TransientPlatformError,
)


@dataclass(frozen=True)
class Script:
    """How a begun deployment goes: it ends `outcome` (with `error`) after `takes` (None: the platform's
    provisioning_time); an outcome of Creating never ends (a stuck deployment)."""

    outcome: Provisioning = Provisioning.SUCCEEDED
    takes: timedelta | None = None
    error: str | None = None


@dataclass
class _Deployment:
    model: ModelRef
    begun_at: datetime
    script: Script
    killed: bool = False  # its serving process died: Failed, answers nothing, until begun again

    def provisioning(self, now: datetime, default: timedelta) -> Provisioning:
        if self.killed:
            return Provisioning.FAILED
        if self.script.outcome == Provisioning.CREATING:
            return Provisioning.CREATING  # stuck: it never finishes
        takes = default if self.script.takes is None else self.script.takes
        return self.script.outcome if now - self.begun_at >= takes else Provisioning.CREATING


@dataclass
class _Endpoint:
    tags: dict[str, str]
    created_at: datetime
    last_deployed_at: datetime
    deployments: dict[str, _Deployment] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    last_request: datetime | None = None


class InMemoryPlatform:
    """The platform port in process memory, with its faults, hooks and counts (see the module docstring)."""

    def __init__(self, clock: Callable[[], datetime] | None = None,
                 provisioning_time: timedelta = timedelta(minutes=2)) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.provisioning_time = provisioning_time
        self.scripts: list[Script] = []  # for the next begun deployments, in order
        self.lock = threading.RLock()
        self.jobs: dict[str, JobState] = {}
        self.records: dict[str, TrainingRecord] = {}
        self.specs: dict[str, JobSpec] = {}
        self.models: dict[str, ModelRef] = {}  # job name -> registered version
        self.endpoints: dict[str, _Endpoint] = {}
        self.effects: Counter[str] = Counter()  # what really happened: submit, register, deploy, ...
        self.deployments_made: Counter[tuple[str, str]] = Counter()  # (endpoint, deployment) creations
        self.deleted_unfinished: list[tuple[str, str]] = []  # deleted while still provisioning
        self.scored: list[tuple[str, str]] = []  # (endpoint, deployment) of each score call
        self.activity_reads: list[str] = []
        self.faults: dict[str, list[PlatformError]] = {}
        self.refused_models: dict[str, str] = {}  # base model -> why this platform cannot fine-tune it
        self.hooks: dict[str, Callable[[str], None]] = {}
        # What its fine-tune honours; a test sets the Azure ML adapter's (no weights, no tools).
        self.support = TrainingSupport(per_turn_weights=True, tool_calling=True)
        # reply(deployment, payload) -> answer; default answers the reference-like text "ok".
        self.reply: Callable[[str, Mapping[str, Any]], Any] = lambda deployment, payload: {"output": "ok"}

    def fail(self, operation: str, *, times: int = 1, permanent: bool = False, target: str = "",
             error: PlatformError | None = None) -> None:
        """The next `times` calls of `operation` (on `target` only, if given) raise."""
        kind = PlatformError if permanent else TransientPlatformError
        key = f"{operation}:{target}" if target else operation
        self.faults.setdefault(key, []).extend(
            error or kind(f"injected {'permanent' if permanent else 'transient'} {operation} failure")
            for _ in range(times))

    def after(self, operation: str, hook: Callable[[str], None]) -> None:
        """Run `hook(target)` once, right after the next call of `operation`."""
        self.hooks[operation] = hook

    def _maybe_fail(self, operation: str, target: str = "") -> None:
        with self.lock:
            for key in (f"{operation}:{target}", operation):
                pending = self.faults.get(key)
                if pending:
                    raise pending.pop(0)

    def _done(self, operation: str, target: str) -> None:
        hook = self.hooks.pop(operation, None)
        if hook is not None:
            hook(target)

    # jobs
    def training_support(self) -> TrainingSupport:
        return self.support

    def check_base_model(self, reference: str) -> None:
        self._maybe_fail("check_base_model", reference)
        if reference in self.refused_models:
            raise BaseModelRefused(self.refused_models[reference])

    def submit(self, spec: JobSpec) -> JobState:
        self._maybe_fail("submit", spec.name)
        self.check_base_model(spec.base_model)  # as the real platforms refuse it at submit too
        with self.lock:
            if spec.name not in self.jobs:
                self.effects["submit"] += 1
                self.specs[spec.name] = spec
                self.jobs[spec.name] = JobState(spec.name, JobStatus.QUEUED.value)
            return self.jobs[spec.name]

    def finish(self, job_name: str, status: str = "Completed",
               metrics: Mapping[str, float] | None = None,
               loss_curve: tuple[tuple[int, float], ...] = ((10, 2.4), (20, 1.9), (30, 1.6)),
               validation_loss: float = 1.7) -> None:
        """The test's stand-in for the job actually running (`metrics`: what its evaluation measured;
        `loss_curve`: the training loss it logged per step)."""
        with self.lock:
            if job_name not in self.jobs:
                raise NotFoundError(f"no job {job_name}")
            self.jobs[job_name] = JobState(job_name, status, error=None if status == "Completed" else "boom",
                                           metrics=dict(metrics or {}))
            eval_loss = (metrics or {}).get("eval_loss", validation_loss)
            self.records[job_name] = TrainingRecord(
                loss_curve=loss_curve,
                validation_loss=((loss_curve[-1][0], eval_loss),) if loss_curve else (),
                missing={"evaluation": "the in-memory platform's jobs write no evaluation report"})

    def training_record(self, job_name: str) -> TrainingRecord:
        self._maybe_fail("training_record", job_name)
        with self.lock:
            if job_name not in self.jobs:
                raise NotFoundError(f"no job {job_name}")
            return self.records.get(job_name, TrainingRecord())

    def job_status(self, job_name: str) -> JobState:
        self._maybe_fail("job_status", job_name)
        with self.lock:
            if job_name not in self.jobs:
                raise NotFoundError(f"no job {job_name}")
            return self.jobs[job_name]

    def register(self, job_name: str, model_name: str, tags: Mapping[str, str],
                 description: str = "") -> ModelRef:
        self._maybe_fail("register", job_name)
        with self.lock:
            if job_name in self.models:
                return self.models[job_name]
            job = self.jobs.get(job_name)
            if job is None:
                raise NotFoundError(f"job {job_name} not found; cannot register its model")
            if job.status != JobStatus.COMPLETED:
                raise PlatformError(f"job {job_name} is {job.status}; only a Completed job's model can be "
                                    "registered")
            self.effects["register"] += 1
            version = 1 + sum(1 for m in self.models.values() if m.name == model_name)
            self.models[job_name] = ModelRef(model_name, str(version))
            return self.models[job_name]

    def script_deployment(self, outcome: Provisioning | str = Provisioning.SUCCEEDED, *,
                          takes: timedelta | None = None, error: str | None = None) -> None:
        """The next begun deployment ends `outcome` after `takes` (default: provisioning_time); Creating means
        it never ends (stuck)."""
        self.scripts.append(Script(Provisioning(outcome), takes, error))

    # endpoints
    def begin_deployment(self, model: ModelRef, endpoint: str, deployment: str,
                         tags: Mapping[str, str]) -> DeploymentStatus:
        self._maybe_fail("begin_deployment", endpoint)
        with self.lock:
            if model not in self.models.values():
                raise NotFoundError(f"model {model.name}:{model.version} is not registered")
            now = self.clock()
            ep = self.endpoints.setdefault(endpoint, _Endpoint(dict(tags), now, now))
            current = ep.deployments.get(deployment)
            # A killed deployment is started again even with the same model (as the local engine restarts a
            # dead server, and Azure ML updates a Failed deployment).
            if current is None or current.model != model or current.killed:
                self.effects["deploy"] += 1
                self.deployments_made[(endpoint, deployment)] += 1
                script = self.scripts.pop(0) if self.scripts else Script()
                ep.deployments[deployment] = _Deployment(model, now, script)
                ep.traffic.setdefault(deployment, 0)
                ep.last_deployed_at = now
        return self.deployment_status(endpoint, deployment)

    def deployment_status(self, endpoint: str, deployment: str) -> DeploymentStatus:
        self._maybe_fail("deployment_status", endpoint)
        with self.lock:
            current = self._endpoint(endpoint).deployments.get(deployment)
            if current is None:
                raise NotFoundError(f"deployment {deployment} of endpoint {endpoint} not found")
            state = current.provisioning(self.clock(), self.provisioning_time)
            error = current.script.error if state in (Provisioning.FAILED, Provisioning.CANCELED) else None
            if current.killed:
                error = "its server was killed"
        self._done("deployment_status", endpoint)
        return DeploymentStatus(endpoint, deployment, state, current.model, error)

    def score(self, endpoint: str, payload: Mapping[str, Any], deployment: str | None = None) -> Any:
        self._maybe_fail("score", endpoint)
        with self.lock:
            ep = self._endpoint(endpoint)
            target = deployment or max(ep.traffic, key=lambda d: ep.traffic[d], default=None)
            serving = deployment is not None or bool(target and ep.traffic.get(target))
            if target is None or target not in ep.deployments or not serving:
                raise PlatformError(f"no deployment {target} takes traffic on {endpoint}")
            if not self._succeeded(ep, target):
                raise PlatformError(f"deployment {target} of {endpoint} is not ready: it has not Succeeded")
            self.scored.append((endpoint, target))
            ep.last_request = self.clock()
        return self.reply(target, payload)

    def chat(self, endpoint: str, deployment: str, request: Mapping[str, Any]) -> dict[str, Any]:
        self._maybe_fail("chat", endpoint)
        payload = chat.seed_request(request)  # the same refusal of a request without messages
        with self.lock:
            ep = self._endpoint(endpoint)
            if deployment not in ep.deployments:
                raise NotFoundError(f"deployment {deployment} of endpoint {endpoint} not found")
            if not self._succeeded(ep, deployment):
                raise TransientPlatformError(f"deployment {deployment} of {endpoint} has not Succeeded")
            self.scored.append((endpoint, deployment))
            self.effects["chat"] += 1
            ep.last_request = self.clock()
        text = chat.seed_reply_text(self.reply(deployment, payload))
        return chat.completion(text, str(request.get("model") or endpoint))

    def chat_stream(self, endpoint: str, deployment: str, request: Mapping[str, Any]) -> Iterator[str]:
        return chat.stream_of(self.chat(endpoint, deployment, request))

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> None:
        self._maybe_fail("set_traffic", endpoint)
        with self.lock:
            ep = self._endpoint(endpoint)
            unknown = set(traffic) - set(ep.deployments)
            if unknown or sum(traffic.values()) not in (0, 100):
                raise PlatformError(f"bad traffic {dict(traffic)} for {endpoint}")
            unready = [d for d, share in traffic.items() if share and not self._succeeded(ep, d)]
            if unready:
                raise PlatformError(f"deployments {unready} of {endpoint} have not Succeeded; no traffic")
            ep.traffic = {d: traffic.get(d, 0) for d in ep.deployments}
            self.effects["set_traffic"] += 1

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        self._maybe_fail("delete_deployment", endpoint)
        with self.lock:
            ep = self.endpoints.get(endpoint)
            if ep and deployment in ep.deployments:
                if ep.traffic.get(deployment):
                    raise PlatformError(f"{deployment} still takes traffic on {endpoint}")
                if not ep.deployments[deployment].provisioning(self.clock(), self.provisioning_time).final:
                    self.deleted_unfinished.append((endpoint, deployment))
                del ep.deployments[deployment]
                ep.traffic.pop(deployment, None)
                self.effects["delete_deployment"] += 1

    def delete_endpoint(self, endpoint: str) -> None:
        self._maybe_fail("delete_endpoint", endpoint)
        with self.lock:
            if self.endpoints.pop(endpoint, None) is not None:
                self.effects["delete_endpoint"] += 1

    def get_endpoint(self, endpoint: str) -> EndpointInfo | None:
        with self.lock:
            return self._info(endpoint) if endpoint in self.endpoints else None

    def list_endpoints(self) -> list[EndpointInfo]:
        with self.lock:
            return [self._info(name) for name in self.endpoints]

    def endpoint_access(self, endpoint: str) -> EndpointAccess:
        """The endpoint's URL and a key of this platform's own (stable per endpoint; it opens nothing: no data
        plane here)."""
        with self.lock:
            self._endpoint(endpoint)
            uri = self._info(endpoint).scoring_uri or ""
        key = hashlib.sha256(f"{id(self)}:{endpoint}".encode()).hexdigest()
        return EndpointAccess(uri, key, key_hint="the in-memory platform keeps it in this process")

    def endpoint_activity(self, endpoint: str) -> datetime | None:
        with self.lock:
            self.activity_reads.append(endpoint)
        self._maybe_fail("endpoint_activity", endpoint)
        with self.lock:
            last = self._endpoint(endpoint).last_request
        self._done("endpoint_activity", endpoint)
        return last

    def kill(self, endpoint: str, deployment: str) -> None:
        """The deployment's serving process dies (kill -9): it reads Failed and answers nothing; the endpoint,
        its traffic split and its other deployments stay (a test's doing, not the port's)."""
        with self.lock:
            self._endpoint(endpoint).deployments[deployment].killed = True

    def live_deployment(self, endpoint: str) -> str | None:
        """The deployment taking all of the endpoint's traffic (a test's question, not the port's)."""
        return next((d for d, share in self._endpoint(endpoint).traffic.items() if share == 100), None)

    def _succeeded(self, ep: _Endpoint, deployment: str) -> bool:
        found = ep.deployments.get(deployment)
        return found is not None and found.provisioning(self.clock(), self.provisioning_time) == \
            Provisioning.SUCCEEDED

    def _endpoint(self, endpoint: str) -> _Endpoint:
        ep = self.endpoints.get(endpoint)
        if ep is None:
            raise NotFoundError(f"endpoint {endpoint} not found")
        return ep

    def _info(self, endpoint: str) -> EndpointInfo:
        ep = self.endpoints[endpoint]
        return EndpointInfo(endpoint, dict(ep.tags), ep.created_at, dict(ep.traffic), tuple(ep.deployments),
                            scoring_uri=f"https://{endpoint}.example/score",
                            last_deployed_at=ep.last_deployed_at)
