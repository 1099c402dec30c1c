"""The contract with chat_completion_pipeline: our input names and types are the real spec's, no others.

The spec is azureml-assets' own file (tests/fakes/wire/assets/chat_completion_pipeline.yaml names its source
commit); the fake workspace refuses a pipeline node as the service does when an input is undeclared, of the
wrong type or a required one is missing, so drift in either direction fails here.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from shared.finetune import COMPONENT_INPUTS, TUNABLE
from shared.platforms.port import PlatformError
from tests.fakes.azureml_world import World, build_world
from tests.fakes.wire.registry import ASSETS
from tests.unit.test_azureml_submit import spec

SPEC_FILE = ASSETS / "chat_completion_pipeline.yaml"


def declared() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))["inputs"])


def test_the_spec_is_azureml_assets_0_0_82_with_its_source() -> None:
    header = SPEC_FILE.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("# source: Azure/azureml-assets ") and "chat_completion/spec.yaml @ " in header
    assert yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))["version"] == "0.0.82"


def test_component_inputs_are_the_components_names_types_and_enums() -> None:
    inputs = declared()
    assert set(COMPONENT_INPUTS) == set(inputs)
    for name, declaration in COMPONENT_INPUTS.items():
        assert declaration.type == inputs[name]["type"], name
        assert declaration.enum == tuple(str(v) for v in inputs[name].get("enum", ())), name


def _node(world: World) -> dict[str, Any]:
    (node,) = world.job("ft-run-1")["jobs"].values()
    return dict(node)


def test_every_name_the_adapter_passes_is_declared_and_every_required_one_is_passed() -> None:
    world = build_world()
    world.platform.submit(spec())
    passed = set(world.node_inputs("ft-run-1"))
    inputs = declared()
    assert passed <= set(inputs)
    assert {n for n, d in inputs.items() if not d.get("optional", False) and "default" not in d} <= passed
    assert passed - TUNABLE >= {"mlflow_model_path", "train_file_path", "test_file_path", "compute_finetune"}


def test_the_service_refuses_an_undeclared_input_and_a_missing_required_one() -> None:
    world = build_world()
    world.platform.submit(spec())
    node = _node(world)
    assert world.wire.workspace._check_node("node", node) is None
    renamed = copy.deepcopy(node)
    renamed["inputs"]["use_lora"] = renamed["inputs"].pop("apply_lora", {"job_input_type": "literal",
                                                                         "value": "true"})
    assert "use_lora" in str(world.wire.workspace._check_node("node", renamed))


def test_a_newer_spec_with_a_required_input_the_adapter_does_not_pass_is_refused_by_name() -> None:
    world = build_world()
    inputs = declared()
    inputs["data_import_mode"] = {"type": "string", "optional": False}
    world.wire.registry.publish_component("chat_completion_pipeline.yaml", version="0.0.83", inputs=inputs)
    with pytest.raises(PlatformError, match="data_import_mode"):
        world.platform.submit(spec())
    assert world.wire.workspace.jobs == {}


@pytest.mark.parametrize(("name", "value"), [("apply_lora", "yes"), ("deepspeed_stage", "1"),
                                             ("num_train_epochs", "two")])
def test_the_fake_service_refuses_a_value_of_the_wrong_type(name: str, value: str) -> None:
    world = build_world()
    world.platform.submit(spec())
    node = _node(world)
    node["inputs"][name] = {"job_input_type": "literal", "value": value}
    assert name in str(world.wire.workspace._check_node("node", node))
