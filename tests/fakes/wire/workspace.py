"""The workspace on ARM: the workspace itself, jobs, model versions and compute clusters.

A pipeline job is checked as the service checks it: each node's component must exist in the registry and
every input the node passes must be one the component declares, of its type (literal values parsed as the
declared type, enums and minimums kept). A model version made from a job output needs that job completed.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.wire.arm import Clock, envelope, not_found, user_error
from tests.fakes.wire.http import Reply, WireRequest, WireTransport, ok
from tests.fakes.wire.ids import ARM, LOCATION, PROVIDER, TENANT, WORKSPACE, WORKSPACE_GUID, WORKSPACE_ID
from tests.fakes.wire.registry import Registry

WS = re.escape(f"{ARM}{WORKSPACE_ID}")
NAME = r"(?P<name>[^/]+)"
JOB_OUTPUT = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)$")


class Workspace:
    """Jobs, models and computes of one workspace; `finish_job` is what Azure ML does when a job ends."""

    def __init__(self, registry: Registry, clock: Clock) -> None:
        self.registry = registry
        self.clock = clock
        self.jobs: dict[str, dict[str, Any]] = {}
        self.models: dict[tuple[str, str], dict[str, Any]] = {}
        self.computes: dict[str, dict[str, Any]] = {}
        self.hidden_once: set[str] = set()  # jobs a concurrent writer has not committed yet, for one read

    def mount(self, wire: WireTransport) -> None:
        wire.route("GET", WS, self.get_workspace)
        wire.route("GET", rf"{WS}/jobs/{NAME}", self.get_job)
        wire.route("PUT", rf"{WS}/jobs/{NAME}", self.put_job)
        wire.route("GET", rf"{WS}/models/{NAME}/versions/(?P<version>[^/]+)", self.get_model)
        wire.route("PUT", rf"{WS}/models/{NAME}/versions/(?P<version>[^/]+)", self.put_model)
        wire.route("GET", rf"{WS}/computes/{NAME}", self.get_compute)

    # -- the workspace ------------------------------------------------------------------------------------

    def get_workspace(self, request: WireRequest, match: re.Match[str]) -> Reply:
        created = self.clock()
        return ok(envelope(WORKSPACE_ID, f"{PROVIDER}/workspaces", {
            "friendlyName": WORKSPACE, "description": "", "hbiWorkspace": False, "tenantId": TENANT,
            "provisioningState": "Succeeded", "v1LegacyMode": False, "workspaceId": WORKSPACE_GUID,
            "publicNetworkAccess": "Enabled", "discoveryUrl": f"https://{LOCATION}.api.azureml.ms/discovery",
            "mlFlowTrackingUri": f"azureml://{LOCATION}.api.azureml.ms/mlflow/v1.0{WORKSPACE_ID}",
        }, created, location=LOCATION, tags={}, sku={"name": "Basic", "tier": "Basic"},
            identity={"type": "SystemAssigned", "principalId": WORKSPACE_GUID, "tenantId": TENANT}))

    # -- jobs ---------------------------------------------------------------------------------------------

    def get_job(self, request: WireRequest, match: re.Match[str]) -> Reply:
        if match["name"] in self.hidden_once:
            self.hidden_once.discard(match["name"])
            return not_found("job", match["name"])
        job = self.jobs.get(match["name"])
        return ok(job) if job else not_found("job", match["name"])

    def put_job(self, request: WireRequest, match: re.Match[str]) -> Reply:
        name = match["name"]
        if name in self.jobs:
            return user_error(f"a job named {name} already exists in workspace {WORKSPACE}", status=409)
        properties = dict((request.body or {}).get("properties") or {})
        if properties.get("jobType") != "Pipeline":
            return user_error(f"jobType {properties.get('jobType')!r} is not what this workspace expects")
        for node_name, node in (properties.get("jobs") or {}).items():
            refused = self._check_node(node_name, node)
            if refused:
                return user_error(refused)
        properties.update(status="NotStarted", services={"Studio": {
            "jobServiceType": "Studio", "endpoint": f"https://ml.azure.com/runs/{name}?wsid={WORKSPACE_ID}"}})
        self.jobs[name] = envelope(f"{WORKSPACE_ID}/jobs/{name}", f"{PROVIDER}/workspaces/jobs", properties,
                                   self.clock())
        return ok(self.jobs[name], status=201)

    def _check_node(self, node_name: str, node: dict[str, Any]) -> str | None:
        spec = self.registry.component_spec(str(node.get("componentId", "")))
        if spec is None:
            return f"node {node_name}: component {node.get('componentId')} not found"
        declared = spec.get("inputs") or {}
        for name, value in (node.get("inputs") or {}).items():
            if name not in declared:
                return f"node {node_name}: input {name} is not an input of {spec['name']}:{spec['version']}"
            problem = input_problem(name, declared[name], value)
            if problem:
                return f"node {node_name}: {problem}"
        for name, declaration in declared.items():
            if not declaration.get("optional", False) and "default" not in declaration \
                    and name not in (node.get("inputs") or {}):
                return f"node {node_name}: required input {name} of {spec['name']} is missing"
        for name in node.get("outputs") or {}:
            if name not in (spec.get("outputs") or {}):
                return f"node {node_name}: output {name} is not an output of {spec['name']}"
        return None

    def finish_job(self, name: str, status: str) -> None:
        """The job ends (Completed, Failed, Canceled) or moves on (Running...), as Azure ML reports it."""
        self.jobs[name]["properties"]["status"] = status

    # -- models -------------------------------------------------------------------------------------------

    def get_model(self, request: WireRequest, match: re.Match[str]) -> Reply:
        model = self.models.get((match["name"], match["version"]))
        return ok(model) if model else not_found("model", f"{match['name']}:{match['version']}")

    def put_model(self, request: WireRequest, match: re.Match[str]) -> Reply:
        key = (match["name"], match["version"])
        properties = dict((request.body or {}).get("properties") or {})
        source = JOB_OUTPUT.match(str(properties.get("modelUri", "")))
        if source:
            job = self.jobs.get(source["job"])
            if job is None or job["properties"].get("status") != "Completed":
                return user_error(f"job {source['job']} has no completed output {source['output']}")
            if source["output"] not in (job["properties"].get("outputs") or {}):
                return user_error(f"job {source['job']} has no output named {source['output']}")
        created = self.models[key]["systemData"] if key in self.models else None
        properties.setdefault("flavors", {})
        properties.update(isArchived=False, jobName=source["job"] if source else None)
        self.models[key] = envelope(f"{WORKSPACE_ID}/models/{key[0]}/versions/{key[1]}",
                                    f"{PROVIDER}/workspaces/models/versions", properties, self.clock())
        if created:
            self.models[key]["systemData"]["createdAt"] = created["createdAt"]
        return ok(self.models[key], status=200 if created else 201)

    # -- compute ------------------------------------------------------------------------------------------

    def add_cluster(self, name: str, size: str, state: str = "Succeeded") -> None:
        """A compute cluster as the workspace holds it (state: its provisioningState)."""
        self.computes[name] = envelope(f"{WORKSPACE_ID}/computes/{name}", f"{PROVIDER}/workspaces/computes", {
            "computeType": "AmlCompute", "computeLocation": LOCATION, "provisioningState": state,
            "isAttachedCompute": False, "disableLocalAuth": True,
            "properties": {"vmSize": size, "vmPriority": "Dedicated", "osType": "Linux",
                           "scaleSettings": {"maxNodeCount": 1, "minNodeCount": 0,
                                             "nodeIdleTimeBeforeScaleDown": "PT120S"},
                           "currentNodeCount": 0, "targetNodeCount": 0, "allocationState": "Steady"},
        }, self.clock(), location=LOCATION)

    def get_compute(self, request: WireRequest, match: re.Match[str]) -> Reply:
        compute = self.computes.get(match["name"])
        return ok(compute) if compute else not_found("compute", match["name"])


def input_problem(name: str, declared: dict[str, Any], value: dict[str, Any]) -> str | None:
    """Why the service refuses this node input against the component's declaration, or None."""
    kind, wanted = value.get("job_input_type"), declared.get("type")
    if wanted not in ("string", "integer", "number", "boolean"):
        return None if kind == wanted else f"input {name} must be {wanted}, got {kind}"
    if kind != "literal":
        return f"input {name} must be a literal {wanted}, got {kind}"
    literal = str(value.get("value"))
    try:
        number = int(literal) if wanted == "integer" else float(literal) if wanted == "number" else None
    except ValueError:
        return f"input {name}={literal!r} is not a valid {wanted}"
    if number is not None and "min" in declared and number < float(declared["min"]):
        return f"input {name}={literal} is below its minimum {declared['min']}"
    enum = declared.get("enum")
    if enum and literal not in [str(e) for e in enum]:
        return f"input {name}={literal!r} is not one of {enum}"
    return None
