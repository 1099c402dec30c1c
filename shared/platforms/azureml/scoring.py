"""Scoring an endpoint: its key from ARM, then a POST to its scoring URI (to one deployment by header).

`ml.online_endpoints.invoke()` is not used: azure-ai-ml 1.35 builds its request headers by mutating the
class-level `EndpointInvokeFields.DEFAULT_HEADER`, so after one call naming a deployment every later call in
the process sends that `azureml-model-deployment` header too (and requests would reach the wrong deployment,
concurrently even). The same two steps, done here with headers of our own, avoid that.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from azure.core.rest import HttpRequest

from shared.platforms.azureml.errors import ServiceUnavailable, azure_call
from shared.platforms.chat import completion, seed_reply_text, seed_request
from shared.platforms.port import EndpointAccess, NotFoundError, PlatformError, RequestRefused
from shared.settings import AzureMLSettings

DEPLOYMENT_HEADER = "azureml-model-deployment"
READ_TIMEOUT_S = 100  # the deployment's own request timeout is 90 s


def score(ml: Any, client: Any, endpoint: str, payload: Mapping[str, Any], deployment: str | None) -> Any:
    """POST the payload to the endpoint, or to one deployment by name; the answer parsed from JSON."""
    target = f"endpoint {endpoint}" + (f" deployment {deployment}" if deployment else "")
    uri, key = _address(ml, endpoint, f"look up {target} to score it")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    if deployment:
        headers[DEPLOYMENT_HEADER] = deployment
    request = HttpRequest("POST", uri, json=dict(payload), headers=headers)
    with azure_call(f"score {target}"):
        response = client.send_request(request, connection_timeout=10, read_timeout=READ_TIMEOUT_S)
    if response.status_code >= 400:
        kind = NotFoundError if response.status_code == 404 else ServiceUnavailable \
            if response.status_code == 429 or response.status_code >= 500 else PlatformError
        raise kind(f"score {target}: the endpoint answered HTTP {response.status_code}: "
                   f"{response.text()[:300]}")
    try:
        return json.loads(response.text())
    except ValueError:
        return response.text()


def _address(ml: Any, endpoint: str, doing: str) -> tuple[str, str]:
    """The endpoint's scoring URI and primary key (get + listKeys); NotFoundError while it has no URI."""
    with azure_call(doing):
        entity = ml.online_endpoints.get(endpoint)
        keys = ml.online_endpoints.get_keys(endpoint)
    if not entity.scoring_uri:
        raise NotFoundError(f"endpoint {endpoint} has no scoring URI yet (provisioning state "
                            f"{entity.provisioning_state})")
    return entity.scoring_uri, keys.primary_key


def access(ml: Any, endpoint: str, workspace: AzureMLSettings) -> EndpointAccess:
    """The endpoint's scoring URI and primary key (the same get + listKeys as scoring), and the `az` command
    that prints the keys to whoever may list them."""
    uri, key = _address(ml, endpoint, f"look up endpoint {endpoint}'s scoring URI and key")
    hint = (f"`az ml online-endpoint get-credentials --name {endpoint} --resource-group "
            f"{workspace.resource_group} --workspace-name {workspace.workspace}` prints it")
    return EndpointAccess(uri, key, key_hint=hint)


class ScoringTargets:
    """Each endpoint's scoring URI and key, read once (get + listKeys) and kept: the front door forwards every
    request, and two ARM reads a request would cost it seconds. A 401 (keys regenerated) reads them again."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def get(self, ml: Any, endpoint: str) -> tuple[str, str]:
        with self._lock:
            known = self._known.get(endpoint)
        if known is not None:
            return known
        address = _address(ml, endpoint, f"look up endpoint {endpoint} to call it")
        with self._lock:
            self._known[endpoint] = address
        return address

    def forget(self, endpoint: str) -> None:
        with self._lock:
            self._known.pop(endpoint, None)


def chat(ml: Any, client: Any, targets: ScoringTargets, endpoint: str, deployment: str,
         request: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI chat request, as the seed's payload to the deployment pinned by header; a chat.completion."""
    payload = seed_request(request)
    for attempt in range(2):
        uri, key = targets.get(ml, endpoint)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}",
                   DEPLOYMENT_HEADER: deployment}
        with azure_call(f"call endpoint {endpoint} deployment {deployment}"):
            response = client.send_request(HttpRequest("POST", uri, json=payload, headers=headers),
                                           connection_timeout=10, read_timeout=READ_TIMEOUT_S)
        if response.status_code == 401 and attempt == 0:
            targets.forget(endpoint)  # the keys were regenerated: read them again, once
            continue
        break
    status, where = response.status_code, f"endpoint {endpoint} deployment {deployment}"
    if status == 404:
        raise NotFoundError(f"{where}: HTTP 404: {response.text()[:300]}")
    if status == 429 or status >= 500:
        raise ServiceUnavailable(f"{where}: HTTP {status}: {response.text()[:300]}")
    if status >= 400:
        raise RequestRefused(f"{where} refused the request (HTTP {status}): {response.text()[:300]}",
                             status if status in (400, 413, 422) else 400)
    try:
        answer = json.loads(response.text())
    except ValueError:
        answer = response.text()
    return completion(seed_reply_text(answer), str(request.get("model") or endpoint))
