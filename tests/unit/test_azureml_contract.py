"""The contract with chat_completion_pipeline: our input names and types are its, no others."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from azure.ai.ml import Input
from azure.ai.ml.dsl import pipeline
from azure.ai.ml.exceptions import UnexpectedKeywordError
from azure.core.exceptions import HttpResponseError

from shared.finetune import COMPONENT_INPUTS, TUNABLE
from tests.fakes.azureml import COMPONENT_SPEC, FakeRegistryClient
from tests.fakes.azureml_world import build_world
from tests.unit.test_azureml_submit import spec


def test_component_inputs_are_the_components_names_types_and_enums() -> None:
    declared = yaml.safe_load(COMPONENT_SPEC.read_text())["inputs"]
    assert set(COMPONENT_INPUTS) == set(declared)
    for name, declaration in COMPONENT_INPUTS.items():
        assert declaration.type == declared[name]["type"], name
        assert declaration.enum == tuple(str(v) for v in declared[name].get("enum", ())), name


def test_every_name_the_adapter_passes_is_a_component_input() -> None:
    world = build_world()
    world.platform.submit(spec())
    (node,) = world.ml.jobs.created[0].jobs.values()
    passed = {name for name, value in node.inputs.items() if value._data is not None}
    assert passed <= set(COMPONENT_INPUTS)
    assert passed - TUNABLE >= {"mlflow_model_path", "train_file_path", "test_file_path", "compute_finetune"}


def _job_with(**inputs: object) -> Any:
    component = FakeRegistryClient().components.get("chat_completion_pipeline", label="latest")

    def body() -> dict[str, object]:
        node = component(train_file_path=Input(type="uri_file", path="https://a/b.jsonl"), **inputs)
        return {"trained_model": node.outputs.mlflow_model_folder}

    job = pipeline(body, name="contract")()
    job.name = "contract-job"
    return job


def test_a_name_the_component_does_not_declare_is_refused() -> None:
    with pytest.raises(UnexpectedKeywordError, match="use_lora"):  # the SDK, building the node
        _job_with(use_lora="true")
    world = build_world()
    node = _job_with(apply_lora="true")._to_rest_object().as_dict()["properties"]["jobs"]["node"]
    world.ml.jobs._check_node(node)  # accepted: a declared name in its type
    node["inputs"]["use_lora"] = node["inputs"].pop("apply_lora")
    with pytest.raises(HttpResponseError, match="use_lora"):  # the service, reading the REST body
        world.ml.jobs._check_node(node)


@pytest.mark.parametrize(("name", "value"), [("apply_lora", True), ("deepspeed_stage", 1),
                                             ("num_train_epochs", "two")])
def test_the_fake_service_refuses_a_value_of_the_wrong_type(name: str, value: object) -> None:
    world = build_world()
    with pytest.raises(HttpResponseError, match=name):
        world.ml.jobs.create_or_update(_job_with(**{name: value}))
