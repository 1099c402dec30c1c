"""Fake online_endpoints and online_deployments: real entities, the service's rules."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.ai.ml._restclient.arm_ml_service.models._models import DefaultScaleSettings
from azure.ai.ml.entities import OnlineDeployment, OnlineEndpoint
from azure.core.exceptions import ResourceNotFoundError

from tests.fakes._common import LOCATION, WORKSPACE_ID, Poller, user_error

MAX_REQUEST_TIMEOUT_MS = 180000

# What a deployment answers: (endpoint, deployment, request payload) -> the JSON body of the reply.
Answer = Callable[[str, str, Any], Any]


def answer_by_deployment(endpoint: str, deployment: str, payload: Any) -> Any:
    """An MLflow chat deployment's reply, `{"output": "..."}`, naming the deployment that answered."""
    return {"output": f"answer from {deployment}"}


class FakeOnlineEndpoints:
    """online_endpoints: create/update (traffic checked), get, list, delete, invoke.

    `answer` decides what invoke replies (default: `answer_by_deployment`); tests set it to model a
    deployment that answers in a list, with an empty reply, or with the reference text.
    """

    def __init__(self, clock: Any = None, answer: Answer = answer_by_deployment) -> None:
        self._rest: dict[str, Any] = {}
        self.answer = answer
        self.deployments: FakeOnlineDeployments | None = None
        self.requests: list[tuple[str, str, Any]] = []  # (endpoint, deployment, payload)
        self.traffic_history: list[tuple[str, dict[str, int]]] = []
        self._clock = clock or (lambda: datetime.now(UTC))

    def begin_create_or_update(self, endpoint: OnlineEndpoint, *, local: bool = False) -> Poller:
        # The SDK drops 0 % entries before sending; the service then checks the rest.
        endpoint.traffic = {k: v for k, v in (endpoint.traffic or {}).items() if v}
        rest = endpoint._to_rest_online_endpoint(location=LOCATION)
        traffic = dict(endpoint.traffic)
        if traffic:
            known = {name for (ep, name) in self._deployments() if ep == endpoint.name}
            if set(traffic) - known:
                raise user_error(f"traffic names unknown deployments: {sorted(set(traffic) - known)}")
            if sum(traffic.values()) != 100:
                raise user_error(f"traffic must sum to 100, got {sum(traffic.values())}")
        old = self._rest.get(str(endpoint.name))
        previous = (old.properties.properties or {}).get("createdAt") if old else None
        created = str(previous or self._clock().isoformat())
        rest.properties.properties = {**(rest.properties.properties or {}), "createdAt": created}
        rest.id = f"{WORKSPACE_ID}/onlineEndpoints/{endpoint.name}"
        rest.name = endpoint.name
        rest.properties.scoring_uri = f"https://{endpoint.name}.{LOCATION}.inference.ml.azure.com/score"
        rest.properties.provisioning_state = "Succeeded"
        self._rest[str(endpoint.name)] = rest
        self.traffic_history.append((str(endpoint.name), traffic))
        return Poller(OnlineEndpoint._from_rest_object(copy.deepcopy(rest)))

    def get(self, name: str, *, local: bool = False) -> OnlineEndpoint:
        if name not in self._rest:
            raise ResourceNotFoundError(f"endpoint {name} not found")
        return OnlineEndpoint._from_rest_object(copy.deepcopy(self._rest[name]))

    def list(self, *, local: bool = False) -> list[OnlineEndpoint]:
        return [OnlineEndpoint._from_rest_object(copy.deepcopy(r)) for r in self._rest.values()]

    def begin_delete(self, name: str | None = None, *, local: bool = False) -> Poller:
        if name not in self._rest:
            raise ResourceNotFoundError(f"endpoint {name} not found")
        del self._rest[name]
        for key in [k for k in self._deployments() if k[0] == name]:
            del self._deployments()[key]
        return Poller()

    def invoke(self, endpoint_name: str, *, request_file: str | None = None,
               deployment_name: str | None = None, **_: Any) -> str:
        endpoint = self.get(endpoint_name)
        target = deployment_name
        if target is None:
            live = {k: v for k, v in (endpoint.traffic or {}).items() if v}
            if not live:
                raise user_error("no valid deployment with positive weight", status=404)
            target = max(live, key=lambda k: live[k])
        if (endpoint_name, target) not in self._deployments():
            raise ResourceNotFoundError(f"deployment {target} not found")
        with open(str(request_file), encoding="utf-8") as request:
            payload = json.load(request)
        self.requests.append((endpoint_name, target, payload))
        return json.dumps(self.answer(endpoint_name, target, payload))

    def _deployments(self) -> dict[tuple[str, str], Any]:
        return self.deployments._rest if self.deployments else {}


class FakeOnlineDeployments:
    """online_deployments: create/update (on an existing endpoint), get, list, delete (not with traffic)."""

    def __init__(self, endpoints: FakeOnlineEndpoints) -> None:
        self._endpoints = endpoints
        endpoints.deployments = self
        self._rest: dict[tuple[str, str], Any] = {}
        self.created: list[Any] = []  # the entities as submitted, for assertions
        self.fail_next: Exception | None = None

    def begin_create_or_update(self, deployment: Any, **_: Any) -> Poller:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self._endpoints.get(str(deployment.endpoint_name))
        timeout = deployment.request_settings.request_timeout_ms if deployment.request_settings else None
        if timeout is not None and timeout > MAX_REQUEST_TIMEOUT_MS:
            raise user_error(f"request_timeout_ms {timeout} exceeds {MAX_REQUEST_TIMEOUT_MS}")
        rest = deployment._to_rest_object(location=LOCATION)
        rest.properties.scale_settings = rest.properties.scale_settings or DefaultScaleSettings()
        rest.properties.provisioning_state = "Succeeded"
        rest.id = f"{WORKSPACE_ID}/onlineEndpoints/{deployment.endpoint_name}/deployments/{deployment.name}"
        rest.name = deployment.name
        self._rest[(str(deployment.endpoint_name), str(deployment.name))] = rest
        self.created.append(deployment)
        return Poller(self.get(str(deployment.name), str(deployment.endpoint_name)))

    def get(self, name: str, endpoint_name: str, *, local: bool = False) -> Any:
        if (endpoint_name, name) not in self._rest:
            raise ResourceNotFoundError(f"deployment {name} of endpoint {endpoint_name} not found")
        return OnlineDeployment._from_rest_object(copy.deepcopy(self._rest[(endpoint_name, name)]))

    def list(self, endpoint_name: str, *, local: bool = False) -> list[Any]:
        return [self.get(name, ep) for (ep, name) in self._rest if ep == endpoint_name]

    def begin_delete(self, name: str, endpoint_name: str, *, local: bool = False) -> Poller:
        if (endpoint_name, name) not in self._rest:
            raise ResourceNotFoundError(f"deployment {name} not found")
        if (self._endpoints.get(endpoint_name).traffic or {}).get(name, 0) > 0:
            raise user_error(f"deployment {name} still receives traffic; move its traffic first")
        del self._rest[(endpoint_name, name)]
        return Poller()
