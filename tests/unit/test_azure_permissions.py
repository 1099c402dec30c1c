"""Every request the adapter makes is allowed by the roles infra/ assigns the app's identity, at their scope.

The whole adapter runs once over the wire fake (submit on serverless and on a cluster, status, register,
deploy blue/green, traffic, score, activity, list, delete). Each recorded request is mapped to the
resource-provider operation ARM authorizes (tests/fakes/wire/rbac.py) and checked against the actions minus
notActions of the built-in roles (tests/fakes/wire/roles/*.json, each with its source) that the Bicep assigns
(tests/fakes/wire/grants.py parses infra/). docs/azure.md lists the same operations with the role that allows
each; a test keeps the two equal.
"""

from __future__ import annotations

import re
import shutil
from functools import cache
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

from tests.fakes.azureml_world import World, build_world
from tests.fakes.wire.grants import INFRA, infra_grants
from tests.fakes.wire.http import WireRequest
from tests.fakes.wire.rbac import PUBLIC, Grant, Operation, allowed
from tests.unit.test_azureml_activity import PAYLOAD
from tests.unit.test_azureml_submit import spec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "azure.md"


def exercise(world: World) -> None:
    """Everything the lifecycle asks of the adapter, once."""
    platform, wire = world.platform, world.wire
    platform.submit(spec())
    platform.job_status("ft-run-1")
    wire.tracking.log_training("ft-run-1", [2.4, 2.0, 1.8, 1.6, 1.5], [1.9, 1.7])
    wire.workspace.finish_job("ft-run-1", "Completed")
    platform.training_record("ft-run-1")
    blue = platform.register("ft-run-1", "Phi-4-chats", {}, "")
    world.deployed(blue, "chats-ep", "blue")
    platform.score("chats-ep", PAYLOAD, deployment="blue")
    platform.set_traffic("chats-ep", {"blue": 100})
    world.deployed(blue, "chats-ep", "green")
    platform.set_traffic("chats-ep", {"green": 100})
    platform.delete_deployment("chats-ep", "blue")
    platform.list_endpoints()
    world.later(hours=3)
    platform.endpoint_activity("chats-ep")
    platform.delete_endpoint("chats-ep")


@cache
def recorded() -> tuple[tuple[WireRequest, Operation], ...]:
    """Every request of the exercise (serverless) and of a submit on a cluster, with its operation."""
    world = build_world()
    exercise(world)
    cluster = build_world(AZUREML_COMPUTE="gpu-cluster")
    cluster.wire.workspace.add_cluster("gpu-cluster", "Standard_NC24ads_A100_v4")
    cluster.platform.submit(spec())
    return tuple((r, w.wire.authorizer.operation(r))
                 for w in (world, cluster) for r in w.wire.transport.requests)


def operations(requests: tuple[tuple[WireRequest, Operation], ...]) -> dict[str, set[str]]:
    """Operation (action) → the requests (method, path below the provider) that need it."""
    found: dict[str, set[str]] = {}
    for request, operation in requests:
        if operation.action != PUBLIC:
            path = re.sub(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/", "…/", request.path)
            found.setdefault(operation.action, set()).add(f"{request.method} {path}")
    return found


def denied(requests: tuple[tuple[WireRequest, Operation], ...], grants: tuple[Grant, ...]) -> list[str]:
    return [f"{r.method} {r.host}{r.path} needs {op.action}" for r, op in requests if not allowed(op, grants)]


def test_every_request_the_adapter_makes_is_allowed_by_the_roles_infra_assigns() -> None:
    requests = recorded()
    assert len(requests) > 30
    assert denied(requests, infra_grants()) == []
    # Nothing subscription-wide: the identity's roles are on the workspace only (an LRO's status poll is
    # authorized as the request that started it, so its subscription-level URL is no exception).
    scopes = [scope for _, op in requests for scope in op.scopes]
    assert scopes and all("/workspaces/mlw-autopilot" in scope for scope in scopes), scopes


def test_the_vm_size_list_is_subscription_scoped_and_outside_the_roles() -> None:
    # What compute.py asked on every submit before: list_sizes() → …/locations/{loc}/vmSizes.
    world = build_world()
    with pytest.raises(HttpResponseError, match="AuthorizationFailed"):
        world.platform.ml.compute.list_sizes()
    (refused,) = world.wire.transport.denied
    assert refused.path.endswith("/vmSizes") and "/workspaces/" not in refused.path


@pytest.mark.parametrize(("role", "edit"), [
    ("Monitoring Reader", ("for role in [roles.azureMlDataScientist, roles.monitoringReader]",
                           "for role in [roles.azureMlDataScientist]")),
    ("AzureML Data Scientist", ("for role in [roles.azureMlDataScientist, roles.monitoringReader]",
                                "for role in [roles.monitoringReader]")),
])
def test_removing_a_role_assignment_from_the_bicep_makes_requests_fail(
        tmp_path: Path, role: str, edit: tuple[str, str]) -> None:
    infra = tmp_path / "infra"
    shutil.copytree(INFRA, infra)
    access = infra / "modules" / "ml-access.bicep"
    text = access.read_text(encoding="utf-8")
    assert edit[0] in text
    access.write_text(text.replace(*edit), encoding="utf-8")
    grants = infra_grants(infra)
    assert role not in {g.role.name for g in grants}
    refused = denied(recorded(), grants)
    assert refused, f"nothing needs {role}?"
    needed = "Microsoft.Insights/metrics/read" if role == "Monitoring Reader" else "MachineLearningServices"
    assert all(needed in line for line in refused), refused


def documented() -> dict[str, str]:
    """docs/azure.md's operation table: action → role."""
    rows = re.findall(r"^\|\s*`(Microsoft\.[^`]+)`\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|",
                      DOCS.read_text(encoding="utf-8"), flags=re.M)
    return {action: role for action, role, _ in rows}


def test_docs_list_every_operation_with_the_role_that_allows_it() -> None:
    found = operations(recorded())
    table = documented()
    assert set(table) == set(found), (sorted(set(found) - set(table)), sorted(set(table) - set(found)))
    roles = {g.role.name for g in infra_grants()}
    for action, role in table.items():
        assert role in roles, (action, role)
        assert any(g.role.name == role and g.role.allows(action) for g in infra_grants()), (action, role)
