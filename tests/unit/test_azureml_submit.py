"""AzureMLPlatform.submit against the in-memory workspace: the PipelineJob it builds, what it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from shared.platforms.azureml.errors import ComputeNotAllowed, InvalidParameters, ModelRetired
from shared.platforms.port import HASH_TAG, RUN_TAG, JobSpec, NotFoundError
from tests.fakes.azureml import registry_model
from tests.fakes.azureml_world import A100_SKUS, build_world

TRAIN = "https://acct.blob.core.windows.net/staged/run-1/train.jsonl"
TEST = "https://acct.blob.core.windows.net/staged/run-1/test.jsonl"


def spec(**changes: object) -> JobSpec:
    base: dict[str, object] = dict(name="ft-run-1", run_id="run-1", display_name="Phi-4-chats", base_model="",
                                   train_uri=TRAIN, test_uri=TEST, tags={HASH_TAG: "abc123"})
    return JobSpec(**{**base, **changes})  # type: ignore[arg-type]


def node_inputs(job: Any) -> dict[str, Any]:
    (node,) = job.jobs.values()  # type: ignore[attr-defined]
    return {name: value._data for name, value in node.inputs.items() if value._data is not None}


def test_serverless_job_is_the_seeds_pipeline_on_phi4() -> None:
    world = build_world()
    state = world.platform.submit(spec())
    assert state.name == "ft-run-1" and state.status == "NotStarted"
    (job,) = world.ml.jobs.created
    inputs = node_inputs(job)
    assert inputs["mlflow_model_path"].type == "mlflow_model"
    assert inputs["mlflow_model_path"].path == "azureml://registries/azureml/models/Phi-4/versions/7"
    for step in ("model_import", "preprocess", "finetune", "model_evaluation"):
        assert inputs[f"compute_{step}"] == "serverless"
    assert inputs["instance_type_finetune"] == "Standard_NC24ads_A100_v4"
    assert inputs["number_of_gpu_to_use_finetuning"] == 1
    assert inputs["train_file_path"].type == "uri_file" and inputs["train_file_path"].path == TRAIN
    assert inputs["test_file_path"].type == "uri_file" and inputs["test_file_path"].path == TEST
    assert inputs["deepspeed_stage"] == "3" and inputs["precision"] == "16"  # Phi-4's own defaults
    assert "learning_rate_min" not in inputs
    assert job.settings.force_rerun is True and job.settings.continue_on_step_failure is False
    assert job.tags[RUN_TAG] == "run-1" and job.tags[HASH_TAG] == "abc123"
    assert job.experiment_name == "finetune-autopilot"
    assert job.display_name == "Phi-4-chats-bs1-cosine-ds3-lora-save_limit-1-seqlen-1"
    rest = job._to_rest_object().as_dict()
    assert rest["properties"]["outputs"]["trained_model"]["jobOutputType"] == "mlflow_model"
    (node,) = rest["properties"]["jobs"].values()
    assert node["outputs"]["mlflow_model_folder"]["value"] == "${{parent.outputs.trained_model}}"
    assert node["componentId"].endswith("/components/chat_completion_pipeline/versions/0.0.82")


def test_submit_twice_returns_the_first_job() -> None:
    world = build_world()
    first = world.platform.submit(spec())
    world.ml.jobs.set_status("ft-run-1", "Running")
    second = world.platform.submit(spec())
    assert len(world.ml.jobs.created) == 1
    assert (first.name, second.status) == ("ft-run-1", "Running")


def test_a_concurrent_submit_that_won_is_returned() -> None:
    world = build_world()
    world.platform.submit(spec())
    real_get = world.ml.jobs.get
    calls = []

    def get_missing_once(name: str) -> object:
        calls.append(name)
        if len(calls) == 1:  # the other submit has not created it yet when this one looks
            raise ResourceNotFoundError(name)
        return real_get(name)

    world.ml.jobs.get = get_missing_once  # type: ignore[method-assign]
    assert world.platform.submit(spec()).name == "ft-run-1"
    assert len(world.ml.jobs.created) == 1 and len(calls) == 2


def test_the_seeds_retired_model_is_refused_before_submitting() -> None:
    world = build_world(BASE_MODEL="Phi-3-mini-4k-instruct")
    with pytest.raises(ModelRetired) as caught:
        world.platform.submit(spec())
    assert "2025-08-30" in str(caught.value) and "BASE_MODEL" in str(caught.value)
    assert world.ml.jobs.created == []


def test_an_archived_model_is_refused() -> None:
    world = build_world(BASE_MODEL="Old-Model")
    archived = registry_model("Old-Model", "1", system_metadata={"isArchived": True})
    world.registry.models.create_or_update(archived)
    with pytest.raises(ModelRetired, match="archived"):
        world.platform.submit(spec())


def test_a_pinned_version_is_used() -> None:
    world = build_world(BASE_MODEL="Phi-4:7")
    world.registry.models.create_or_update(registry_model("Phi-4", "8"))
    world.platform.submit(spec())
    assert node_inputs(world.ml.jobs.created[0])["mlflow_model_path"].path.endswith("/Phi-4/versions/7")


def test_cluster_passes_its_name_and_gpus_per_node() -> None:
    world = build_world(AZUREML_COMPUTE="gpu-cluster")
    world.ml.compute.add_cluster("gpu-cluster", "Standard_NC96ads_A100_v4")
    world.platform.submit(spec())
    inputs = node_inputs(world.ml.jobs.created[0])
    assert inputs["compute_finetune"] == "gpu-cluster" and inputs["compute_preprocess"] == "gpu-cluster"
    assert inputs["number_of_gpu_to_use_finetuning"] == 4
    assert "instance_type_finetune" not in inputs
    assert world.ml.jobs.created[0].display_name.startswith("Phi-4-chats-bs4-")


def test_failed_cluster_is_refused() -> None:
    world = build_world(AZUREML_COMPUTE="gpu-cluster")
    world.ml.compute.add_cluster("gpu-cluster", "Standard_NC24ads_A100_v4", provisioning_state="Failed")
    with pytest.raises(ComputeNotAllowed, match="failed state"):
        world.platform.submit(spec())


def test_cluster_outside_the_models_allow_list_is_refused() -> None:
    world = build_world(AZUREML_COMPUTE="gpu-cluster")
    world.ml.compute.add_cluster("gpu-cluster", "Standard_ND96amsr_A100_v4")
    with pytest.raises(ComputeNotAllowed) as caught:
        world.platform.submit(spec())
    assert all(sku in str(caught.value) for sku in A100_SKUS)
    assert world.ml.jobs.created == []


def test_old_allow_list_tag_is_read() -> None:
    world = build_world(BASE_MODEL="Legacy", AZUREML_INSTANCE_TYPE_FINETUNE="Standard_NC96ads_A100_v4")
    world.registry.models.create_or_update(registry_model(
        "Legacy", "1", tags={"finetune_compute_allow_list": "['Standard_NC24ads_A100_v4']"}))
    with pytest.raises(ComputeNotAllowed, match="Standard_NC24ads_A100_v4"):
        world.platform.submit(spec())


def test_deny_listed_size_is_refused_without_an_allow_list() -> None:
    world = build_world(BASE_MODEL="NoList", AZUREML_COMPUTE="k80")
    world.registry.models.create_or_update(registry_model("NoList", "1"))
    world.ml.compute.add_cluster("k80", "Standard_NC6")
    with pytest.raises(ComputeNotAllowed, match="not supported"):
        world.platform.submit(spec())


def test_size_missing_from_the_region_is_refused() -> None:
    world = build_world(AZUREML_INSTANCE_TYPE_FINETUNE="Standard_NC48ads_A100_v4")
    world.ml.compute.sizes = [s for s in world.ml.compute.sizes if s.name != "Standard_NC48ads_A100_v4"]
    with pytest.raises(ComputeNotAllowed, match="not offered"):
        world.platform.submit(spec())


def test_run_overrides_beat_the_models_defaults() -> None:
    world = build_world()
    world.platform.submit(spec(parameters={"learning_rate": "1e-5", "num_train_epochs": "2"}))
    inputs = node_inputs(world.ml.jobs.created[0])
    assert inputs["learning_rate"] == pytest.approx(1e-5) and inputs["num_train_epochs"] == 2


def test_an_explicit_choice_equal_to_a_seed_default_still_beats_the_models_default() -> None:
    world = build_world()
    world.platform.submit(spec(parameters={"deepspeed_stage": "2"}))  # Phi-4's own default is 3
    assert node_inputs(world.ml.jobs.created[0])["deepspeed_stage"] == "2"


def test_unknown_parameter_is_refused_with_the_valid_names() -> None:
    world = build_world()
    with pytest.raises(InvalidParameters) as caught:
        world.platform.submit(spec(parameters={"epochs": 2}))
    assert "epochs" in str(caught.value) and "num_train_epochs" in str(caught.value)
    assert world.ml.jobs.created == []


def test_job_status_follows_the_job_and_a_missing_job_is_not_found() -> None:
    world = build_world()
    world.platform.submit(spec())
    world.ml.jobs.set_status("ft-run-1", "Failed")
    state = world.platform.job_status("ft-run-1")
    assert state.terminal and state.status == "Failed" and state.error
    with pytest.raises(NotFoundError):
        world.platform.job_status("nope")
