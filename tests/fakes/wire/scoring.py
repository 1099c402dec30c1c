"""The endpoints' data plane: POST https://{endpoint}.{region}.inference.ml.azure.com/score.

As Azure ML routes it: the endpoint key (or a token) in `Authorization: Bearer`, then the deployment named by
the `azureml-model-deployment` header, else the traffic split; a deployment that is not provisioned does not
answer. Every scored request is kept with its time: Azure Monitor's RequestsPerMinute is counted from them.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.fakes.wire.arm import Clock
from tests.fakes.wire.endpoints import Endpoints
from tests.fakes.wire.http import Reply, WireRequest, WireTransport, ok
from tests.fakes.wire.ids import LOCATION

# What a deployment answers: (endpoint, deployment, request payload) -> the JSON body of the reply.
Answer = Callable[[str, str, Any], Any]


def answer_by_deployment(endpoint: str, deployment: str, payload: Any) -> Any:
    """An MLflow chat deployment's reply, `{"output": "..."}`, naming the deployment that answered."""
    return {"output": f"answer from {deployment}"}


@dataclass(frozen=True)
class Scored:
    endpoint: str
    deployment: str
    payload: Any
    at: datetime


class Scoring:
    def __init__(self, endpoints: Endpoints, clock: Clock) -> None:
        self.endpoints = endpoints
        self.clock = clock
        self.answer: Answer = answer_by_deployment
        self.scored: list[Scored] = []

    def mount(self, wire: WireTransport) -> None:
        host = re.escape(f".{LOCATION}.inference.ml.azure.com")
        wire.route("POST", rf"(?P<endpoint>[a-z0-9-]+){host}/score", self.score)

    def score(self, request: WireRequest, match: re.Match[str]) -> Reply:
        name = match["endpoint"]
        endpoint = self.endpoints.endpoints.get(name)
        if endpoint is None or endpoint["properties"]["provisioningState"] != "Succeeded":
            return Reply(404, {"message": f"endpoint {name} not found or not ready"})
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not any(hmac.compare_digest(given, key) for key in self.endpoints.keys.get(name, ())):
            return Reply(401, {"message": "the key is missing or wrong"})
        deployment = request.headers.get("azureml-model-deployment") or _by_traffic(endpoint)
        if deployment is None:
            return Reply(404, {"message": "No valid deployments to route to. Please check that the endpoint "
                                          "has at least one deployment with positive weight values or use a "
                                          "deployment specific header to route."})
        state = self.endpoints.deployments.get((name, deployment))
        if state is None or state["properties"]["provisioningState"] != "Succeeded":
            return Reply(404, {"message": f"deployment {deployment} not found or not ready"})
        self.scored.append(Scored(name, deployment, request.body, self.clock()))
        return ok(self.answer(name, deployment, request.body), **{"azureml-model-deployment": deployment})


def _by_traffic(endpoint: dict[str, Any]) -> str | None:
    live = {k: int(v) for k, v in (endpoint["properties"].get("traffic") or {}).items() if int(v) > 0}
    return max(live, key=lambda k: live[k]) if live else None
