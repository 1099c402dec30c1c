"""Scoring an endpoint: its key from ARM, then a POST to its scoring URI (to one deployment by header).

`ml.online_endpoints.invoke()` is not used: azure-ai-ml 1.35 builds its request headers by mutating the
class-level `EndpointInvokeFields.DEFAULT_HEADER`, so after one call naming a deployment every later call in
the process sends that `azureml-model-deployment` header too (and requests would reach the wrong deployment,
concurrently even). The same two steps, done here with headers of our own, avoid that.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from azure.core.rest import HttpRequest

from shared.platforms.azureml.errors import ServiceUnavailable, azure_call
from shared.platforms.port import NotFoundError, PlatformError

DEPLOYMENT_HEADER = "azureml-model-deployment"
READ_TIMEOUT_S = 100  # the deployment's own request timeout is 90 s


def score(ml: Any, client: Any, endpoint: str, payload: Mapping[str, Any], deployment: str | None) -> Any:
    """POST the payload to the endpoint, or to one deployment by name; the answer parsed from JSON."""
    target = f"endpoint {endpoint}" + (f" deployment {deployment}" if deployment else "")
    with azure_call(f"look up {target} to score it"):
        entity = ml.online_endpoints.get(endpoint)
        keys = ml.online_endpoints.get_keys(endpoint)
    if not entity.scoring_uri:
        raise NotFoundError(f"{target} has no scoring URI yet (provisioning state "
                            f"{entity.provisioning_state})")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {keys.primary_key}"}
    if deployment:
        headers[DEPLOYMENT_HEADER] = deployment
    request = HttpRequest("POST", entity.scoring_uri, json=dict(payload), headers=headers)
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
