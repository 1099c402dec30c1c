"""Managed online endpoints: create (key auth, our tags), deploy blue/green, switch traffic, score, delete.

A new deployment comes up at 0 % beside the live one; the lifecycle smoke-tests it by name (the
`azureml-model-deployment` header, see scoring.py), then moves the traffic and deletes the old one. Azure
refuses to delete a deployment that still has traffic, so the order matters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from azure.ai.ml.entities import (
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    OnlineRequestSettings,
    ProbeSettings,
)
from azure.core.exceptions import ResourceNotFoundError

from shared.platforms.azureml import failure, started
from shared.platforms.azureml.errors import TrafficNotSettled, azure_call, translate
from shared.platforms.port import (
    MANAGED_TAG,
    DeploymentStatus,
    EndpointInfo,
    ModelRef,
    NotFoundError,
    PlatformError,
    Provisioning,
)

DEPLOYED_AT_TAG = "autopilot-deployed-at"
MODEL_TAG = "autopilot-model"
LIVENESS_INITIAL_DELAY_S = 600  # large chat models take minutes to load before they answer the probe
REQUEST_TIMEOUT_MS = 90000
# How long set_traffic reads an endpoint back for its new split (Azure takes tens of seconds) before it
# gives up for this call: part of the promote step's time budget (shared/lifecycle/budget.py).
TRAFFIC_READS = 12
TRAFFIC_READ_INTERVAL_S = 5.0


def existing_endpoint(ml: Any, name: str) -> Any | None:
    """The endpoint's entity; None if there is no such endpoint."""
    try:
        return ml.online_endpoints.get(name)
    except ResourceNotFoundError:
        return None
    except Exception as error:
        raise translate(error, f"get endpoint {name}") from error


def _endpoint(name: str, tags: Mapping[str, str]) -> ManagedOnlineEndpoint:
    return ManagedOnlineEndpoint(name=name, auth_mode="key", tags={**tags, MANAGED_TAG: "true"},
                                 description="Fine-Tune Autopilot endpoint")


def begin_endpoint(ml: Any, name: str, tags: Mapping[str, str]) -> Provisioning:
    """Start creating the endpoint (key auth, our tags) if it does not exist, without waiting; its state."""
    existing = existing_endpoint(ml, name)
    if existing is not None:
        return Provisioning.parse(existing.provisioning_state)
    with azure_call(f"create endpoint {name}"):
        started.start_endpoint(ml, _endpoint(name, tags))  # 1-2 min: polled by the steps, not awaited
    return Provisioning.CREATING


def deployment_status(ml: Any, endpoint: str, deployment: str, arm: Any) -> DeploymentStatus:
    """The deployment's provisioning state as the service reports it, with Azure's reason when it failed;
    NotFoundError if there is none (or it is being deleted: a delete is begun, not awaited, and what is going
    counts as gone)."""
    found = find_deployment(ml, endpoint, deployment)
    status = status_of(endpoint, deployment, found if found is not None and present(found) else None)
    if status.provisioning is Provisioning.FAILED and not status.error:
        why = failure.failure_reason(arm, found) or (
            f"Azure ML gives no reason; `az ml online-deployment get-logs -e {endpoint} -n {deployment}` "
            "shows its container's log")
        status = replace(status, error=why)
    return status


def present(entity: Any) -> bool:
    """The endpoint or deployment is not being deleted."""
    return Provisioning.parse(entity.provisioning_state) != Provisioning.DELETING


def status_of(endpoint: str, deployment: str, found: Any | None) -> DeploymentStatus:
    """A deployment entity's provisioning state; NotFoundError if there is none."""
    if found is None:
        raise NotFoundError(f"deployment {deployment} of endpoint {endpoint} not found")
    model = _model_ref((found.tags or {}).get(MODEL_TAG))
    return DeploymentStatus(endpoint, deployment, Provisioning.parse(found.provisioning_state), model)


def _model_ref(tag: str | None) -> ModelRef | None:
    name, _, version = (tag or "").rpartition(":")
    return ModelRef(name, version) if name and version else None


def find_deployment(ml: Any, endpoint: str, deployment: str) -> Any | None:
    """The deployment, or None."""
    try:
        return ml.online_deployments.get(name=deployment, endpoint_name=endpoint)
    except ResourceNotFoundError:
        return None
    except Exception as error:
        raise translate(error, f"get deployment {deployment} of endpoint {endpoint}") from error


def create_deployment(ml: Any, model: ModelRef, model_id: str, endpoint: str, deployment: str,
                      instance_type: str, tags: Mapping[str, str], now: datetime) -> None:
    """Start a one-instance deployment of the model with the seed's probe and timeout; it starts with no
    traffic. Only started (the service takes 10-20 minutes), with no poller left behind: the caller polls
    `deployment_status`."""
    spec = ManagedOnlineDeployment(
        name=deployment,
        endpoint_name=endpoint,
        model=model_id,
        instance_type=instance_type,
        instance_count=1,
        liveness_probe=ProbeSettings(initial_delay=LIVENESS_INITIAL_DELAY_S),
        request_settings=OnlineRequestSettings(request_timeout_ms=REQUEST_TIMEOUT_MS),
        tags={**tags, MODEL_TAG: f"{model.name}:{model.version}", DEPLOYED_AT_TAG: now.isoformat()},
    )
    with azure_call(f"deploy {model.name}:{model.version} as {deployment} on endpoint {endpoint}"):
        started.start_deployment(ml, spec)


def set_traffic(ml: Any, endpoint: str, traffic: Mapping[str, int], sleep: Callable[[float], None]) -> None:
    """Replace the endpoint's traffic map (percentages summing to 100, or all 0), and read the endpoint back
    at most TRAFFIC_READS times, TRAFFIC_READ_INTERVAL_S apart, until it serves the new split.

    Bounded, unlike the SDK poller's `.result()`: an update still running after that raises TrafficNotSettled
    (transient), and a second call finds the split already set, or still settling, and does not PUT again.
    """
    total = sum(traffic.values())
    if total not in (0, 100) or any(v < 0 for v in traffic.values()):
        raise PlatformError(f"traffic for endpoint {endpoint} must sum to 100 (or 0), got {dict(traffic)}")
    wanted = {name: share for name, share in traffic.items() if share > 0}
    what = f"set traffic of endpoint {endpoint} to {dict(traffic)}"
    with azure_call(what):
        current = ml.online_endpoints.get(endpoint)
        if _serves(current, wanted):
            return
        if Provisioning.parse(current.provisioning_state).final:  # not an update of ours still running
            current.traffic = dict(wanted)
            started.start_endpoint_update(ml, current)
        for _ in range(TRAFFIC_READS):
            sleep(TRAFFIC_READ_INTERVAL_S)
            if _serves(ml.online_endpoints.get(endpoint), wanted):
                return
    raise TrafficNotSettled(f"{what}: the endpoint is still updating after "
                            f"{TRAFFIC_READS * TRAFFIC_READ_INTERVAL_S:g} s; asked again later")


def _serves(endpoint: Any, wanted: Mapping[str, int]) -> bool:
    """The endpoint is provisioned and its traffic is `wanted` (zero shares aside)."""
    shares = {name: int(share) for name, share in (endpoint.traffic or {}).items() if int(share) > 0}
    return shares == dict(wanted) and \
        Provisioning.parse(endpoint.provisioning_state) == Provisioning.SUCCEEDED


def delete_deployment(ml: Any, endpoint: str, deployment: str) -> None:
    """Start deleting one deployment (not awaited: it leaves Azure's listing within minutes); a missing one
    (or endpoint) is fine."""
    try:
        started.start_deployment_delete(ml, endpoint, deployment)
    except ResourceNotFoundError:
        return
    except Exception as error:
        raise translate(error, f"delete deployment {deployment} of endpoint {endpoint}") from error


def delete_endpoint(ml: Any, endpoint: str) -> None:
    """Start deleting the endpoint with its deployments (not awaited); a missing one is fine."""
    try:
        started.start_endpoint_delete(ml, endpoint)
    except ResourceNotFoundError:
        return
    except Exception as error:
        raise translate(error, f"delete endpoint {endpoint}") from error


def endpoint_info(ml: Any, endpoint: Any, with_deployments: bool = True) -> EndpointInfo:
    """The port's view of an endpoint; deployment creation times come from our deployed-at tag."""
    deployments: list[Any] = []
    if with_deployments:
        with azure_call(f"list deployments of endpoint {endpoint.name}"):
            deployments = [d for d in ml.online_deployments.list(endpoint_name=endpoint.name) if present(d)]
    deployed = [_time((d.tags or {}).get(DEPLOYED_AT_TAG)) for d in deployments]
    return EndpointInfo(
        name=endpoint.name,
        tags=dict(endpoint.tags or {}),
        created_at=_time((endpoint.properties or {}).get("createdAt")),
        # azure-ai-ml adds a 0 for every deployment it lists, one being deleted too: that one is gone here.
        traffic={k: int(v) for k, v in (endpoint.traffic or {}).items()
                 if int(v) > 0 or not with_deployments or k in {d.name for d in deployments}},
        deployments=tuple(sorted(d.name for d in deployments)),
        scoring_uri=endpoint.scoring_uri,
        last_deployed_at=max((t for t in deployed if t is not None), default=None),
    )


def _time(raw: Any) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
