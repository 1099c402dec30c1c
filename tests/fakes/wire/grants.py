"""The role assignments infra/ makes for the function app's identity, read from the Bicep (pycep-parser).

Every `Microsoft.Authorization/roleAssignments` resource in infra/ whose principal is `appPrincipalId` becomes
a Grant: its role definition GUID(s) (a literal, `roles.x`, or a `for role in [...]` loop over either) at the
scope it names (a resource symbol of that file, mapped to the fake world's id of that resource type; no scope
means the module's resource group).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from tests.fakes.wire.ids import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE_ID
from tests.fakes.wire.rbac import Grant, built_in_roles

INFRA = Path(__file__).resolve().parents[3] / "infra"
RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
# The fake world's id for each resource type a role can be assigned on (one resource of each type).
SCOPES = {
    "Microsoft.MachineLearningServices/workspaces": WORKSPACE_ID,
    "Microsoft.Storage/storageAccounts": f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/stautopilot",
    "Microsoft.EventGrid/topics": f"{RG_ID}/providers/Microsoft.EventGrid/topics/evgt-alerts",
    # The vault of ALERT_WEBHOOK_SECRET_VAULT (the platform reads the secret; the adapters never call it).
    "Microsoft.KeyVault/vaults": f"{RG_ID}/providers/Microsoft.KeyVault/vaults/kv-alerts",
}


def parse(path: Path) -> dict[str, Any]:
    import pycep

    return dict(pycep.BicepParser().parse(file_path=path))


@cache
def infra_grants(infra: Path = INFRA) -> tuple[Grant, ...]:
    """The app identity's grants as infra/ assigns them."""
    roles = built_in_roles()
    found = []
    for path in sorted(infra.rglob("*.bicep")):
        template = parse(path)
        for role_id, scope in _assignments(template):
            if role_id not in roles:
                raise AssertionError(f"{path.name} assigns role {role_id}, which has no file in roles/")
            found.append(Grant(roles[role_id], scope))
    return tuple(found)


def _assignments(template: dict[str, Any]) -> Iterator[tuple[str, str]]:
    variables = {k: v["value"] for k, v in (template.get("variables") or {}).items()}
    resources = template.get("resources") or {}
    for resource in resources.values():
        if resource.get("type") != "Microsoft.Authorization/roleAssignments":
            continue
        config = resource["config"]
        loop = config.get("loop_type")
        body = config.get("config", config) if loop else config
        if (body.get("properties") or {}).get("principalId") != "appPrincipalId":
            continue
        scope = _scope(body.get("scope"), resources)
        definition = body["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        if loop:
            for item in _values(loop["detail"]["array_name"], variables):
                yield item, scope
        else:
            yield _value(definition, variables), scope


def _scope(symbol: Any, resources: dict[str, Any]) -> str:
    if symbol is None:
        return RG_ID
    kind = resources[str(symbol)]["type"]
    if kind not in SCOPES:
        raise AssertionError(f"a role is assigned on a {kind}, which the fake world does not have")
    return SCOPES[kind]


def _values(array: Any, variables: dict[str, Any]) -> list[str]:
    if isinstance(array, str):
        array = variables[array]
    return [_value(item, variables) for item in array]


def _value(expression: Any, variables: dict[str, Any]) -> str:
    if isinstance(expression, str):
        return expression
    operands = expression["operator"]["operands"]
    return str(variables[operands["operand_1"]][operands["operand_2"]])
