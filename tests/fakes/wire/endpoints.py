"""Managed online endpoints and deployments on ARM, with the rules Azure ML enforces.

Endpoint names are unique per region (`taken_in_region` holds other people's) and follow Azure's pattern;
traffic goes only to existing, provisioned deployments and sums to 100; a deployment needs its endpoint and a
registered model, its request timeout is at most 180000 ms, and one that still has traffic cannot be deleted.
Creates, updates and deletes are long-running operations (`operations.py`); provisioning can fail
(`fail_next_deployment`), or a deployment's PUT be refused at once with the code naming why
(`refuse_next_deployment`: quota, capacity). Scoring (the data plane) is in `scoring.py`.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Callable
from typing import Any

import isodate

from tests.fakes.wire.arm import Clock, envelope, not_found, user_error
from tests.fakes.wire.http import Reply, WireRequest, WireTransport, arm_error, ok
from tests.fakes.wire.ids import ARM, LOCATION, PROVIDER, TENANT, WORKSPACE_GUID, WORKSPACE_ID, stamp
from tests.fakes.wire.operations import Operations
from tests.fakes.wire.workspace import Workspace

EP = re.escape(f"{ARM}{WORKSPACE_ID}") + r"/onlineEndpoints/(?P<endpoint>[^/]+)"
ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
MAX_REQUEST_TIMEOUT_S = 180
# What the service fills in when a managed deployment leaves it out (the recording in
# examples/online_deployment.jsonc shows these values).
SERVICE_DEFAULTS: dict[str, Any] = {
    "scaleSettings": {"scaleType": "Default"},
    "requestSettings": {"maxQueueWait": "PT0S", "requestTimeout": "PT5S",
                        "maxConcurrentRequestsPerInstance": 1},
    "livenessProbe": {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S", "period": "PT10S",
                      "initialDelay": "PT10S"},
    "readinessProbe": {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S", "period": "PT10S",
                       "initialDelay": "PT10S"},
    "appInsightsEnabled": False, "egressPublicNetworkAccess": "Enabled", "privateNetworkConnection": False,
    "modelMountPath": None, "environmentVariables": {},
}


class Endpoints:
    def __init__(self, workspace: Workspace, operations: Operations, clock: Clock) -> None:
        self.workspace = workspace
        self.operations = operations
        self.clock = clock
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, tuple[str, str]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.taken_in_region: set[str] = set()  # other subscriptions' endpoint names in this region
        self.traffic_history: list[tuple[str, dict[str, int]]] = []
        self.created_deployments: list[tuple[str, str]] = []
        self.fail_next_deployment: tuple[str, str] | None = None
        self.refuse_next_deployment: tuple[str, str] | None = None  # (code, message): the PUT is refused

    def mount(self, wire: WireTransport) -> None:
        wire.route("GET", rf"{re.escape(ARM + WORKSPACE_ID)}/onlineEndpoints", self.list_endpoints)
        wire.route("GET", EP, self.get_endpoint)
        wire.route("PUT", EP, self.put_endpoint)
        wire.route("DELETE", EP, self.delete_endpoint)
        wire.route("POST", rf"{EP}/listKeys", self.list_keys)
        wire.route("GET", rf"{EP}/deployments", self.list_deployments)
        wire.route("GET", rf"{EP}/deployments/(?P<name>[^/]+)", self.get_deployment)
        wire.route("PUT", rf"{EP}/deployments/(?P<name>[^/]+)", self.put_deployment)
        wire.route("DELETE", rf"{EP}/deployments/(?P<name>[^/]+)", self.delete_deployment)

    # -- endpoints ----------------------------------------------------------------------------------------

    def list_endpoints(self, request: WireRequest, match: re.Match[str]) -> Reply:
        return ok({"value": list(self.endpoints.values()), "nextLink": None})

    def get_endpoint(self, request: WireRequest, match: re.Match[str]) -> Reply:
        self.operations.work()
        found = self.endpoints.get(match["endpoint"])
        return ok(found) if found else not_found("online endpoint", match["endpoint"])

    def put_endpoint(self, request: WireRequest, match: re.Match[str]) -> Reply:
        name, body = match["endpoint"], request.body or {}
        if not ENDPOINT_NAME.match(name):
            return user_error(f"endpoint name {name!r} is invalid: 3-32 characters, a letter first, then "
                              "letters, digits or '-', not ending with '-'")
        if name not in self.endpoints and name in self.taken_in_region:
            return arm_error(409, "Conflict", f"an online endpoint named {name} already exists in region "
                             f"{LOCATION}; endpoint names must be unique per region")
        if str(body.get("location", "")).lower() != LOCATION:
            return user_error(f"location {body.get('location')!r} is not the workspace's region {LOCATION}")
        properties = dict(body.get("properties") or {})
        traffic = {k: int(v) for k, v in (properties.get("traffic") or {}).items()}
        refused = self._traffic_problem(name, traffic)
        if refused:
            return user_error(refused)
        existing = self.endpoints.get(name)
        target = existing or self._new_endpoint(name, body, properties)
        if existing is None:
            self.endpoints[name] = target
            self.keys[name] = (secrets.token_urlsafe(24), secrets.token_urlsafe(24))
        else:
            target["tags"] = dict(body.get("tags") or {})
        target["properties"]["provisioningState"] = "Creating" if existing is None else "Updating"
        headers = self.operations.start("oe", request, lambda: self._endpoint_done(name, traffic))
        target["properties"]["properties"]["AzureAsyncOperationUri"] = headers["Azure-AsyncOperation"]
        return ok(target, status=201, **headers)

    def _new_endpoint(self, name: str, body: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
        resource_id = f"{WORKSPACE_ID}/onlineEndpoints/{name}"
        return envelope(resource_id, f"{PROVIDER}/workspaces/onlineEndpoints", {
            "description": properties.get("description"),
            "properties": {"azureml.onlineendpointid": resource_id.lower()},
            "scoringUri": None, "swaggerUri": None, "authMode": properties.get("authMode", "Key"),
            "provisioningState": "Creating", "compute": None, "traffic": {}, "mirrorTraffic": {},
            "publicNetworkAccess": "Enabled",
        }, self.clock(), tags=dict(body.get("tags") or {}), location=LOCATION,
                               kind="Managed",
            identity={"type": "SystemAssigned", "principalId": WORKSPACE_GUID, "tenantId": TENANT})

    def _endpoint_done(self, name: str, traffic: dict[str, int]) -> None:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return
        host = f"{name}.{LOCATION}.inference.ml.azure.com"
        endpoint["properties"].update(provisioningState="Succeeded", traffic=dict(traffic),
                                      scoringUri=f"https://{host}/score",
                                      swaggerUri=f"https://{host}/swagger.json")
        endpoint["systemData"]["lastModifiedAt"] = stamp(self.clock())
        self.traffic_history.append((name, dict(traffic)))

    def _traffic_problem(self, endpoint: str, traffic: dict[str, int]) -> str | None:
        if not traffic:
            return None
        ready = {name for (ep, name), d in self.deployments.items()
                 if ep == endpoint and d["properties"]["provisioningState"] == "Succeeded"}
        unknown = sorted(set(traffic) - ready)
        if unknown:
            return f"traffic names deployments that do not exist or are not provisioned: {unknown}"
        if any(v < 0 or v > 100 for v in traffic.values()) or sum(traffic.values()) != 100:
            return f"traffic percentages must be 0-100 and sum to 100, got {traffic}"
        return None

    def delete_endpoint(self, request: WireRequest, match: re.Match[str]) -> Reply:
        name = match["endpoint"]
        if name not in self.endpoints:
            return Reply(204)
        self.endpoints[name]["properties"]["provisioningState"] = "Deleting"

        def gone() -> None:
            self.endpoints.pop(name, None)
            self.keys.pop(name, None)
            for key in [k for k in self.deployments if k[0] == name]:
                del self.deployments[key]
        return Reply(202, None, self.operations.start("oe", request, gone))

    def list_keys(self, request: WireRequest, match: re.Match[str]) -> Reply:
        endpoint = self.endpoints.get(match["endpoint"])
        if endpoint is None:
            return not_found("online endpoint", match["endpoint"])
        if str(endpoint["properties"]["authMode"]).lower() != "key":
            return user_error(f"endpoint {match['endpoint']} does not use key authentication")
        primary, secondary = self.keys[match["endpoint"]]
        return ok({"primaryKey": primary, "secondaryKey": secondary})

    # -- deployments --------------------------------------------------------------------------------------

    def list_deployments(self, request: WireRequest, match: re.Match[str]) -> Reply:
        if match["endpoint"] not in self.endpoints:
            return not_found("online endpoint", match["endpoint"])
        found = [d for (ep, _), d in self.deployments.items() if ep == match["endpoint"]]
        return ok({"value": found, "nextLink": None})

    def get_deployment(self, request: WireRequest, match: re.Match[str]) -> Reply:
        self.operations.work()
        found = self.deployments.get((match["endpoint"], match["name"]))
        return ok(found) if found else not_found("deployment", f"{match['endpoint']}/{match['name']}")

    def put_deployment(self, request: WireRequest, match: re.Match[str]) -> Reply:
        endpoint, name, body = match["endpoint"], match["name"], request.body or {}
        if endpoint not in self.endpoints:
            return not_found("online endpoint", endpoint)
        if self.endpoints[endpoint]["properties"].get("provisioningState") != "Succeeded":
            return user_error(f"endpoint {endpoint} is not in a Succeeded state; deployments can be created "
                              "once it is", status=409)
        properties = dict(body.get("properties") or {})
        refused = self._deployment_problem(properties)
        if refused:
            return user_error(refused)
        if self.refuse_next_deployment is not None:  # ARM's own check (quota, capacity) before anything
            (code, message), self.refuse_next_deployment = self.refuse_next_deployment, None
            return arm_error(400, code, message)
        key = (endpoint, name)
        existing = self.deployments.get(key)
        resource_id = f"{WORKSPACE_ID}/onlineEndpoints/{endpoint}/deployments/{name}"
        for field, default in SERVICE_DEFAULTS.items():
            properties.setdefault(field, copy.deepcopy(default))
        properties.update(provisioningState="Creating" if existing is None else "Updating",
                          properties={**(properties.get("properties") or {})})
        deployment = envelope(resource_id, f"{PROVIDER}/workspaces/onlineEndpoints/deployments", properties,
                              self.clock(), tags=dict(body.get("tags") or {}), location=LOCATION,
                              kind="Managed",
                              sku={"name": "Default", "tier": "Standard",
                                   "capacity": int((body.get("sku") or {}).get("capacity", 1))})
        self.deployments[key] = deployment
        self.created_deployments.append(key)
        error, self.fail_next_deployment = self.fail_next_deployment, None
        headers = self.operations.start("od", request, self._set_state(key, "Succeeded"),
                                        self._set_state(key, "Failed"), error)
        deployment["properties"]["properties"]["AzureAsyncOperationUri"] = headers["Azure-AsyncOperation"]
        return ok(deployment, status=201, **headers)

    def _deployment_problem(self, properties: dict[str, Any]) -> str | None:
        model = str(properties.get("model") or "")
        name_version = re.search(r"/models/([^/]+)/versions/([^/]+)$", model)
        if not name_version or (name_version[1], name_version[2]) not in self.workspace.models:
            return f"model {model!r} is not a registered model of the workspace"
        if not properties.get("instanceType"):
            return "instanceType is required for a managed online deployment"
        timeout = (properties.get("requestSettings") or {}).get("requestTimeout")
        if timeout and isodate.parse_duration(timeout).total_seconds() > MAX_REQUEST_TIMEOUT_S:
            return f"requestTimeout {timeout} exceeds the maximum of {MAX_REQUEST_TIMEOUT_S} seconds"
        return None

    def kill(self, endpoint: str, deployment: str) -> None:
        """The deployment's container dies for good: the service reports it Failed (a test's doing)."""
        self.deployments[(endpoint, deployment)]["properties"]["provisioningState"] = "Failed"

    def _set_state(self, key: tuple[str, str], state: str) -> Callable[[], None]:
        def apply() -> None:
            if key in self.deployments:
                self.deployments[key]["properties"]["provisioningState"] = state
        return apply

    def delete_deployment(self, request: WireRequest, match: re.Match[str]) -> Reply:
        key = (match["endpoint"], match["name"])
        if key not in self.deployments:
            return Reply(204)
        endpoint = self.endpoints.get(key[0])
        if endpoint and int((endpoint["properties"].get("traffic") or {}).get(key[1], 0)) > 0:
            return user_error(f"deployment {key[1]} still receives traffic on endpoint {key[0]}; set its "
                              "traffic to 0 before deleting it")
        self.deployments[key]["properties"]["provisioningState"] = "Deleting"
        return Reply(202, None, self.operations.start("od", request, lambda: self.deployments.pop(key, None)))
