"""Azure RBAC at the fake's door: each request is mapped to the resource-provider operation ARM checks, and
refused with 403 AuthorizationFailed unless a role assigned to the caller allows it at a scope that contains
the target.

How a request maps (ARM's own convention): GET → `{type path}/read`, PUT/PATCH → `/write`, DELETE → `/delete`,
POST `{resource}/{verb}` → `{type path}/{verb}/action`; the scope is the resource's id. Outside ARM: the
metrics batch API needs `Microsoft.Insights/metrics/read` on every resource it names; the `azureml` system
registry is readable by any signed-in identity; scoring is authorized by the endpoint key, not RBAC; an
operation-status poll is authorized as the request that started the operation.

Built-in role definitions are data (roles/*.json, each with its source).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.fakes.wire.http import Reply, WireRequest, arm_error
from tests.fakes.wire.ids import APP_PRINCIPAL, ARM

ROLES = Path(__file__).with_name("roles")
PUBLIC = "public"  # no RBAC check: the system registry's reads, key-authorized scoring
_ARM_PATH = re.compile(r"^/subscriptions/[^/]+(?:/resourceGroups/[^/]+)?/providers/(?P<rest>.+)$", re.I)
_TRACKING = re.compile(r"^/mlflow/v1\.0(?P<workspace>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                       r"Microsoft\.MachineLearningServices/workspaces/[^/]+)/api/2\.0/mlflow/", re.I)
_STATUS = re.compile(r"/locations/[^/]+/mfeOperation(?:sStatus|Results)/(?P<id>[^/]+)$", re.I)


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    source: str

    def allows(self, action: str) -> bool:
        return any(_matches(p, action) for p in self.actions) and \
            not any(_matches(p, action) for p in self.not_actions)


@dataclass(frozen=True)
class Grant:
    """A role assignment: `role` for the principal at `scope` (and every scope under it)."""

    role: Role
    scope: str
    principal: str = APP_PRINCIPAL

    def covers(self, scope: str) -> bool:
        mine, theirs = self.scope.lower().rstrip("/"), scope.lower().rstrip("/")
        return theirs == mine or theirs.startswith(mine + "/")


@dataclass(frozen=True)
class Operation:
    """What ARM checks for one request: an action at one or more scopes (or PUBLIC)."""

    action: str
    scopes: tuple[str, ...]


@cache
def built_in_roles() -> dict[str, Role]:
    """The role definitions kept as data, by role definition id (the GUID)."""
    roles = {}
    for path in sorted(ROLES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        permissions = data["permissions"][0]
        roles[data["name"]] = Role(data["name"], data["roleName"], tuple(permissions["actions"]),
                                   tuple(permissions["notActions"]), data["_source"])
    return roles


def _matches(pattern: str, action: str) -> bool:
    # '*' matches any text; '/*/' also matches a single '/' (AzureML Data Scientist lists
    # workspaces/write under notActions, which only means something if workspaces/*/write covers it).
    parts = [re.escape(p) for p in pattern.split("*")]
    regex = ".*".join(parts).replace(r"/.*/", "/(?:.*/)?")
    return re.fullmatch(regex, action, re.IGNORECASE) is not None


def operation_of(request: WireRequest, origin_of: Callable[[str], WireRequest | None]) -> Operation:
    """The operation ARM (or the data-plane service) authorizes for this request."""
    if request.host == ARM:
        status = _STATUS.search(request.path)
        if status:
            origin = origin_of(status["id"])
            if origin is None:
                return Operation(f"unknown operation {status['id']}", (request.path,))
            return operation_of(origin, origin_of)
        return _arm_operation(request)
    if request.host.endswith(".metrics.monitor.azure.com"):
        ids = tuple((request.body or {}).get("resourceids") or ())
        return Operation("Microsoft.Insights/metrics/read", ids)
    tracking = _TRACKING.match(request.path) if request.host.endswith(".api.azureml.ms") else None
    if tracking:  # the workspace's MLflow server: reading runs and metrics is reading the workspace's runs
        return Operation("Microsoft.MachineLearningServices/workspaces/experiments/runs/read",
                         (tracking["workspace"],))
    if request.host.endswith(".inference.ml.azure.com") or request.host.endswith(".api.azureml.ms") \
            or "/registries/azureml/" in request.path:
        return Operation(PUBLIC, ())
    return Operation(f"unmapped {request.method} {request.host}", (request.path,))


def _arm_operation(request: WireRequest) -> Operation:
    match = _ARM_PATH.match(request.path)
    if not match:
        return Operation(f"unmapped {request.method} {request.path}", (request.path,))
    segments = match["rest"].split("/")
    namespace, pairs = segments[0], segments[1:]
    verb = None
    if request.method == "POST" and len(pairs) % 2 == 1:
        verb, pairs = pairs[-1], pairs[:-1]
    types = pairs[0::2]
    # A collection GET (…/onlineEndpoints) reads that type; its scope is the parent resource.
    scope = request.path if len(pairs) % 2 == 0 else request.path.rsplit("/", 1)[0]
    if verb:
        scope = request.path.rsplit("/", 1)[0]
    verbs = {"GET": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
    suffix = verbs.get(request.method, "action")
    action = f"{namespace}/{'/'.join(types)}/" + (f"{verb}/action" if verb else suffix)
    return Operation(action, (scope,))


def allowed(operation: Operation, grants: Iterable[Grant]) -> bool:
    if operation.action == PUBLIC:
        return True
    grants = list(grants)
    return all(any(g.covers(scope) and g.role.allows(operation.action) for g in grants)
               for scope in operation.scopes) and bool(operation.scopes)


class Authorizer:
    """The transport's door: refuses what the caller's grants do not allow, as ARM words it."""

    def __init__(self, grants: Iterable[Grant], origin_of: Callable[[str], WireRequest | None]) -> None:
        self.grants = list(grants)
        self.origin_of = origin_of

    def __call__(self, request: WireRequest) -> Reply | None:
        operation = self.operation(request)
        if allowed(operation, self.grants):
            return None
        scope = operation.scopes[0] if operation.scopes else request.path
        return arm_error(403, "AuthorizationFailed",
                         f"The client '{APP_PRINCIPAL}' with object id '{APP_PRINCIPAL}' does not have "
                         f"authorization to perform action '{operation.action}' over scope '{scope}' or the "
                         "scope is invalid. If access was recently granted, please refresh your credentials.")

    def operation(self, request: WireRequest) -> Operation:
        return operation_of(request, self.origin_of)
