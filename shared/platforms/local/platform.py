"""LocalPlatform: the platform port on this machine, over the embedded engine (engine/).

A facade over two modules, as AzureMLPlatform is over its own: jobs.py (fine-tunes run as
`python -m engine.train` children, models in the local MLflow registry) and endpoints.py (deployments served
by `engine.serve` processes behind a router, with key auth). Neither imports the engine: they start its
processes by module name and read what those report from files under the data directory (job_files.py,
endpoint_files.py), so any process of the app (a handler, the sweep, the CLI) sees the same platform.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from shared.platforms.local.endpoints import LocalEndpoints
from shared.platforms.local.jobs import LocalJobs
from shared.platforms.port import (
    DeploymentStatus,
    EndpointAccess,
    EndpointInfo,
    JobSpec,
    JobState,
    ModelRef,
    TrainingRecord,
    TrainingSupport,
)
from shared.settings import Settings


class LocalPlatform:
    """Jobs and endpoints together: the whole `Platform` port, plus what `autopilot up` and the CLI use here
    (resume and stop the servers, where an endpoint's key is)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jobs = LocalJobs(settings)
        self._endpoints = LocalEndpoints(settings)

    @property
    def settings(self) -> Settings:
        return self._settings

    # -- jobs (jobs.py) --------------------------------------------------------------------------------------

    def check_base_model(self, reference: str) -> None:
        self._jobs.check_base_model(reference)

    def training_support(self) -> TrainingSupport:
        return self._jobs.training_support()

    def submit(self, spec: JobSpec) -> JobState:
        return self._jobs.submit(spec)

    def job_status(self, job_name: str) -> JobState:
        return self._jobs.job_status(job_name)

    def training_record(self, job_name: str) -> TrainingRecord:
        return self._jobs.training_record(job_name)

    def register(self, job_name: str, model_name: str, tags: Mapping[str, str],
                 description: str = "") -> ModelRef:
        return self._jobs.register(job_name, model_name, tags, description)

    # -- endpoints (endpoints.py) ----------------------------------------------------------------------------

    def begin_deployment(self, model: ModelRef, endpoint: str, deployment: str,
                         tags: Mapping[str, str]) -> DeploymentStatus:
        return self._endpoints.begin_deployment(model, endpoint, deployment, tags)

    def deployment_status(self, endpoint: str, deployment: str) -> DeploymentStatus:
        return self._endpoints.deployment_status(endpoint, deployment)

    def score(self, endpoint: str, payload: Mapping[str, Any], deployment: str | None = None) -> Any:
        return self._endpoints.score(endpoint, payload, deployment)

    def chat(self, endpoint: str, deployment: str, request: Mapping[str, Any]) -> dict[str, Any]:
        return self._endpoints.chat(endpoint, deployment, request)

    def chat_stream(self, endpoint: str, deployment: str, request: Mapping[str, Any]) -> Iterator[str]:
        return self._endpoints.chat_stream(endpoint, deployment, request)

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> None:
        self._endpoints.set_traffic(endpoint, traffic)

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        self._endpoints.delete_deployment(endpoint, deployment)

    def delete_endpoint(self, endpoint: str) -> None:
        self._endpoints.delete_endpoint(endpoint)

    def get_endpoint(self, endpoint: str) -> EndpointInfo | None:
        return self._endpoints.get_endpoint(endpoint)

    def list_endpoints(self) -> list[EndpointInfo]:
        return self._endpoints.list_endpoints()

    def endpoint_activity(self, endpoint: str) -> datetime | None:
        return self._endpoints.endpoint_activity(endpoint)

    def endpoint_access(self, endpoint: str) -> EndpointAccess:
        return self._endpoints.endpoint_access(endpoint)

    # -- this machine's own ----------------------------------------------------------------------------------

    def resume_all(self) -> list[str]:
        """Start again every router and deployment not running (after `stop_all`, or a reboot)."""
        return self._endpoints.resume_all()

    def stop_all(self) -> None:
        """Stop every deployment's server (state stays; `resume_all` or a deploy starts it again)."""
        self._endpoints.stop_all()
