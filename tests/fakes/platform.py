"""An in-memory platform for the lifecycle's reliability tests.

It keeps the port's rules (idempotent names, 0 % new deployments, traffic only to existing deployments)
and counts every effect, so tests assert on what happened at the platform, not on the ledger alone.
Faults are injected per operation: `fail("deploy", times=2)` makes the next two calls raise a transient
error; `fail("deploy", permanent=True)` a permanent one.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.platforms.port import (
    EndpointInfo,
    JobSpec,
    JobState,
    ModelRef,
    NotFoundError,
    PlatformError,
    TransientPlatformError,
)


class InMemoryPlatform:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.jobs: dict[str, JobState] = {}
        self.specs: dict[str, JobSpec] = {}
        self.models: dict[str, ModelRef] = {}  # job name -> registered version
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.effects: Counter[str] = Counter()  # what really happened: submit, register, deploy, ...
        self.scored: list[tuple[str, str]] = []  # (endpoint, deployment) of each score call
        self.faults: dict[str, list[PlatformError]] = {}
        # reply(deployment, payload) -> answer; default answers the reference-like text "ok".
        self.reply: Callable[[str, Mapping[str, Any]], Any] = lambda deployment, payload: {"output": "ok"}

    def fail(self, operation: str, *, times: int = 1, permanent: bool = False) -> None:
        error = PlatformError if permanent else TransientPlatformError
        self.faults.setdefault(operation, []).extend(
            error(f"injected {'permanent' if permanent else 'transient'} {operation} failure")
            for _ in range(times))

    def _maybe_fail(self, operation: str) -> None:
        with self.lock:
            pending = self.faults.get(operation)
            if pending:
                raise pending.pop(0)

    # jobs
    def submit(self, spec: JobSpec) -> JobState:
        self._maybe_fail("submit")
        with self.lock:
            if spec.name not in self.jobs:
                self.effects["submit"] += 1
                self.specs[spec.name] = spec
                self.jobs[spec.name] = JobState(spec.name, "Queued")
            return self.jobs[spec.name]

    def finish(self, job_name: str, status: str = "Completed") -> None:
        """The test's stand-in for the job actually running."""
        with self.lock:
            self.jobs[job_name] = JobState(job_name, status, error=None if status == "Completed" else "boom")

    def job_status(self, job_name: str) -> JobState:
        self._maybe_fail("job_status")
        with self.lock:
            if job_name not in self.jobs:
                raise NotFoundError(f"no job {job_name}")
            return self.jobs[job_name]

    def register(self, job_name: str, model_name: str, tags: Mapping[str, str],
                 description: str = "") -> ModelRef:
        self._maybe_fail("register")
        with self.lock:
            if job_name not in self.models:
                self.effects["register"] += 1
                version = 1 + sum(1 for m in self.models.values() if m.name == model_name)
                self.models[job_name] = ModelRef(model_name, str(version))
            return self.models[job_name]

    # endpoints
    def deploy(self, model: ModelRef, endpoint: str, deployment: str,
               tags: Mapping[str, str]) -> EndpointInfo:
        self._maybe_fail("deploy")
        with self.lock:
            now = datetime.now(UTC)
            ep = self.endpoints.setdefault(endpoint, {"tags": dict(tags), "created_at": now, "traffic": {},
                                                      "deployments": {}, "last_deployed_at": now})
            if deployment not in ep["deployments"]:
                self.effects["deploy"] += 1
                ep["deployments"][deployment] = model
                ep["traffic"].setdefault(deployment, 0)
                ep["last_deployed_at"] = now
            return self._info(endpoint)

    def score(self, endpoint: str, payload: Mapping[str, Any], deployment: str | None = None) -> Any:
        self._maybe_fail("score")
        with self.lock:
            ep = self.endpoints.get(endpoint)
            if ep is None:
                raise NotFoundError(f"no endpoint {endpoint}")
            target = deployment or max(ep["traffic"], key=ep["traffic"].get, default=None)
            if target is None or target not in ep["deployments"]:
                raise PlatformError(f"no deployment {target} on {endpoint}")
            self.scored.append((endpoint, target))
        return self.reply(target, payload)

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> None:
        self._maybe_fail("set_traffic")
        with self.lock:
            ep = self.endpoints[endpoint]
            unknown = set(traffic) - set(ep["deployments"])
            if unknown or sum(traffic.values()) not in (0, 100):
                raise PlatformError(f"bad traffic {dict(traffic)}")
            ep["traffic"] = {d: traffic.get(d, 0) for d in ep["deployments"]}
            self.effects["set_traffic"] += 1

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        self._maybe_fail("delete_deployment")
        with self.lock:
            ep = self.endpoints.get(endpoint)
            if ep and deployment in ep["deployments"]:
                if ep["traffic"].get(deployment):
                    raise PlatformError(f"{deployment} still has traffic")
                del ep["deployments"][deployment]
                ep["traffic"].pop(deployment, None)
                self.effects["delete_deployment"] += 1

    def delete_endpoint(self, endpoint: str) -> None:
        self._maybe_fail("delete_endpoint")
        with self.lock:
            if self.endpoints.pop(endpoint, None) is not None:
                self.effects["delete_endpoint"] += 1

    def get_endpoint(self, endpoint: str) -> EndpointInfo | None:
        with self.lock:
            return self._info(endpoint) if endpoint in self.endpoints else None

    def list_endpoints(self) -> list[EndpointInfo]:
        with self.lock:
            return [self._info(name) for name in self.endpoints]

    def endpoint_activity(self, endpoint: str) -> datetime | None:
        return None

    def live_deployment(self, endpoint: str) -> str | None:
        traffic = self.endpoints[endpoint]["traffic"]
        return next((d for d, share in traffic.items() if share == 100), None)

    def _info(self, endpoint: str) -> EndpointInfo:
        ep = self.endpoints[endpoint]
        return EndpointInfo(endpoint, dict(ep["tags"]), ep["created_at"], dict(ep["traffic"]),
                            tuple(ep["deployments"]), scoring_uri=f"https://{endpoint}.example/score",
                            last_deployed_at=ep["last_deployed_at"])
