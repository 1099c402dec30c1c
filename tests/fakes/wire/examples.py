"""Azure's own wire examples, kept as test data, and the check that the fake answers in their shape.

Each `examples/*.jsonc` file is a response taken from Azure/azure-rest-api-specs (`x-ms-examples`) or from
azure-ai-ml's recorded tests, with its source in the leading `//` comment lines; only names and ids were
changed. The fake builds its answers from its own state; `unknown_keys` finds any field it sends that the
service's example does not have (tests/unit/test_wire_shapes.py runs it over every answer of a whole run),
so the SDK parses nothing Azure would not send.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).with_name("examples")
# Maps whose keys are the caller's own (tags, traffic, ...): any key is fine there.
FREE_MAPS = frozenset({"tags", "traffic", "mirrorTraffic", "environmentVariables", "properties.properties",
                       "inputs", "outputs", "jobs", "settings", "flavors", "data", "userAssignedIdentities",
                       "services", "resultsByResourceType", "metadatavalues", "system_metadata",
                       "componentSpec"})  # a component's own YAML: its keys are the component author's
# ARM's common `systemData` type (common-types/resource-management/v5/types.json); examples show a subset.
SYSTEM_DATA = frozenset({"createdBy", "createdByType", "createdAt", "lastModifiedBy", "lastModifiedByType",
                         "lastModifiedAt"})


@cache
def example(name: str) -> Any:
    """The example file `name` (without .jsonc), comments stripped."""
    text = (EXAMPLES / f"{name}.jsonc").read_text(encoding="utf-8")
    return json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))


def unknown_keys(answer: Any, shape: Any, path: str = "") -> list[str]:
    """Key paths in `answer` that the example `shape` does not have (lists compared by their first item)."""
    if isinstance(answer, list) and isinstance(shape, list):
        return [k for item in answer for k in unknown_keys(item, shape[0], path)] if shape else []
    if not isinstance(answer, dict) or not isinstance(shape, dict):
        return []
    name = path.rsplit(".", 1)[-1]
    if path in FREE_MAPS or name in FREE_MAPS:
        return []
    if name == "systemData":
        return [f"{path}.{key}" for key in answer if key not in SYSTEM_DATA]
    found = []
    for key, value in answer.items():
        where = f"{path}.{key}" if path else key
        if key not in shape:
            found.append(where)
        else:
            found += unknown_keys(value, shape[key], where)
    return found
