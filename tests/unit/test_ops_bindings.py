"""The ops HTTP functions as the host reads them: routes, methods, function-key auth."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from devhost import triggers

EXPECTED = {"runs_list": ("runs", ["GET"]), "runs_get": ("runs/{id}", ["GET"]),
            "runs_redeploy": ("runs/{id}/redeploy", ["POST"]), "runs_retry": ("runs/{id}/retry", ["POST"]),
            "status_page": ("status", ["GET"])}


@pytest.fixture(scope="module")
def bindings() -> dict[str, dict[str, Any]]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUTOPILOT_STORAGE", "UseDevelopmentStorage=true")
        app = importlib.import_module("function_app").app
        found = {}
        for function in triggers.index(app):
            for binding in function.get_bindings():
                spec = binding.get_dict_repr()
                if spec["type"] == "httpTrigger":
                    found[str(function.get_function_name())] = spec
        return found


def test_each_ops_function_has_its_route_and_methods(bindings: dict[str, dict[str, Any]]) -> None:
    assert {name: (b["route"], [str(m).upper() for m in b["methods"]]) for name, b in bindings.items()
            if name in EXPECTED} == EXPECTED


def test_every_ops_function_needs_a_function_key_on_azure(bindings: dict[str, dict[str, Any]]) -> None:
    assert {str(bindings[name]["authLevel"]).upper() for name in EXPECTED} == {"FUNCTION"}
