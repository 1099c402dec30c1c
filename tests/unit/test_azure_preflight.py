"""`autopilot check-azure` at the wire: the same reads a submit and a deploy make, nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.main import main
from shared.platforms.azureml.preflight import preflight
from tests.fakes.azureml_world import World, build_world


def writes(world: World) -> list[str]:
    return [f"{r.method} {r.path}" for r in world.wire.transport.requests if r.method not in ("GET",)
            and not r.host.endswith(".api.azureml.ms")]


def test_the_defaults_pass_with_reads_only() -> None:
    world = build_world()
    checks = preflight(world.platform)
    assert [c.ok for c in checks] == [True] * 5, checks
    assert "Phi-4 version 8" in checks[0].detail and "0.0.82" in checks[1].detail
    assert writes(world) == [] and world.wire.transport.denied == []


def test_the_seeds_retired_model_fails_naming_its_date_and_a_current_model() -> None:
    world = build_world(BASE_MODEL="Phi-3-mini-4k-instruct")
    checks = preflight(world.platform)
    model = checks[0]
    assert not model.ok and "2025-08-30" in model.detail and "Phi-4" in model.detail
    assert "BASE_MODEL" in model.name
    assert [c.ok for c in checks[1:]] == [True, True]  # the pipeline and the endpoint name are still checked
    assert writes(world) == []


def test_an_inference_size_outside_the_models_allow_list_fails() -> None:
    world = build_world(AZUREML_INSTANCE_TYPE_INFERENCE="Standard_NC6s_v3")
    checks = {c.name.split(" (")[0]: c for c in preflight(world.platform)}
    assert not checks["inference instance type"].ok
    assert "Standard_NC24ads_A100_v4" in checks["inference instance type"].detail


def test_the_command_prints_each_check_and_exits_1_on_a_failure(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    world = build_world(BASE_MODEL="Phi-3-mini-4k-instruct")
    for key, value in world.wire.env(BASE_MODEL="Phi-3-mini-4k-instruct").items():
        monkeypatch.setenv(key, value)
    made: list[Any] = []

    def make_platform(settings: Any) -> Any:
        made.append(settings)
        return world.platform

    monkeypatch.setattr("cli.check_azure.make_platform", make_platform)
    assert main(["check-azure", "--json"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["ok"] is False and "2025-08-30" in lines[0]["detail"]
    assert made[0].platform == "azureml" and made[0].base_model == "Phi-3-mini-4k-instruct"


def test_the_command_without_a_workspace_is_a_usage_error(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    for key in ("AZUREML_SUBSCRIPTION_ID", "AZUREML_RESOURCE_GROUP", "AZUREML_WORKSPACE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AUTOPILOT_STORAGE", "UseDevelopmentStorage=true")
    monkeypatch.chdir("/")  # no local.settings.json
    assert main(["check-azure"]) == 2
    assert "AZUREML_SUBSCRIPTION_ID is not set" in capsys.readouterr().err
