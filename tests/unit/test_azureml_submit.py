"""AzureMLPlatform.submit at the wire: the job the real SDK sends, and what the adapter refuses first."""

from __future__ import annotations

import pytest

from shared.platforms.azureml.errors import ComputeNotAllowed, InvalidParameters, ModelNotFound, ModelRetired
from shared.platforms.port import HASH_TAG, RUN_TAG, JobSpec, ModelRef, NotFoundError
from tests.fakes.azureml_world import A100_SKUS, World, build_world

TRAIN = "https://acct.blob.core.windows.net/staged/run-1/train.jsonl"
TEST = "https://acct.blob.core.windows.net/staged/run-1/test.jsonl"
PHI4 = "azureml://registries/azureml/models/Phi-4/versions/8"


def spec(**changes: object) -> JobSpec:
    base: dict[str, object] = dict(name="ft-run-1", run_id="run-1", display_name="Phi-4-chats", base_model="",
                                   train_uri=TRAIN, test_uri=TEST, tags={HASH_TAG: "abc123"})
    return JobSpec(**{**base, **changes})  # type: ignore[arg-type]


def writes(world: World) -> list[str]:
    """What the adapter asked Azure to change: every request that is not a read."""
    return [f"{r.method} {r.path}" for r in world.wire.transport.requests if r.method != "GET"]


def test_serverless_job_is_the_seeds_pipeline_on_phi4() -> None:
    world = build_world()
    state = world.platform.submit(spec())
    assert state.name == "ft-run-1" and state.status == "NotStarted" and state.studio_url
    inputs = world.node_inputs("ft-run-1")
    assert inputs["mlflow_model_path"] == PHI4 and inputs["task_name"] == "ChatCompletion"
    for step in ("model_import", "preprocess", "finetune", "model_evaluation"):
        assert inputs[f"compute_{step}"] == "serverless"
    assert inputs["instance_type_finetune"] == "Standard_NC24ads_A100_v4"
    assert inputs["number_of_gpu_to_use_finetuning"] == "1"
    assert (inputs["train_file_path"], inputs["test_file_path"]) == (TRAIN, TEST)
    assert inputs["deepspeed_stage"] == "3" and inputs["precision"] == "16"  # Phi-4's own defaults
    assert "learning_rate_min" not in inputs and "trust_remote_code" not in inputs
    job = world.job("ft-run-1")
    assert job["settings"]["force_rerun"] is True and job["settings"]["continue_on_step_failure"] is False
    assert job["tags"][RUN_TAG] == "run-1" and job["tags"][HASH_TAG] == "abc123"
    assert job["experimentName"] == "finetune-autopilot"
    assert job["displayName"].startswith("Phi-4-chats-bs1-cosine-ds3-lora-")
    assert job["outputs"]["trained_model"]["jobOutputType"] == "mlflow_model"
    (node,) = job["jobs"].values()
    assert node["outputs"]["mlflow_model_folder"]["value"] == "${{parent.outputs.trained_model}}"
    assert node["componentId"] == "azureml://registries/azureml/components/chat_completion_pipeline/versions/0.0.82"


def test_submit_twice_returns_the_first_job() -> None:
    world = build_world()
    first = world.platform.submit(spec())
    world.wire.workspace.finish_job("ft-run-1", "Running")
    second = world.platform.submit(spec())
    assert writes(world) == [f"PUT {world.wire.workspace.jobs['ft-run-1']['id']}"]
    assert (first.name, second.status) == ("ft-run-1", "Running")


def test_a_concurrent_submit_that_won_is_returned() -> None:
    world = build_world()
    world.platform.submit(spec())
    world.wire.workspace.finish_job("ft-run-1", "Queued")
    # The other submit had not committed when this one looked.
    world.wire.workspace.hidden_once.add("ft-run-1")
    state = world.platform.submit(spec())
    assert state.status == "Queued"
    assert [w.split()[0] for w in writes(world)] == ["PUT", "PUT"]  # the second PUT got 409 Conflict


@pytest.mark.parametrize("reference", ["Phi-3-mini-4k-instruct", "Phi-3-mini-4k-instruct:15"])
def test_the_seeds_archived_model_is_refused_naming_its_date_before_any_write(reference: str) -> None:
    world = build_world(BASE_MODEL=reference)
    with pytest.raises(ModelRetired) as refused:
        world.platform.submit(spec())
    assert "archived" in str(refused.value) and "2025-08-30" in str(refused.value)
    assert "BASE_MODEL" in str(refused.value) and "Phi-4" in str(refused.value)
    assert writes(world) == []


def test_a_fine_tune_retirement_date_in_the_past_is_refused_even_when_not_archived() -> None:
    world = build_world(BASE_MODEL="Phi-3-mini-4k-instruct")
    # azureml-assets' spec of this model before it was archived (2025): the date lives in its tags then.
    world.wire.registry.publish_model("phi-3-mini-4k-instruct-2025.yaml", version=16)
    with pytest.raises(ModelRetired, match="retired for fine-tuning on 2025-08-30"):
        world.platform.submit(spec())
    assert writes(world) == []


def test_an_unknown_base_model_is_not_found_with_what_to_set() -> None:
    world = build_world(BASE_MODEL="Phi-9-does-not-exist")
    with pytest.raises(ModelNotFound, match="BASE_MODEL"):
        world.platform.submit(spec())


def test_a_pinned_version_is_used() -> None:
    world = build_world(BASE_MODEL="Phi-4:8")
    world.wire.registry.publish_model("Phi-4.yaml", version=9)
    world.platform.submit(spec())
    assert world.node_inputs("ft-run-1")["mlflow_model_path"] == PHI4


def test_cluster_passes_its_name_and_gpus_per_node_without_listing_vm_sizes() -> None:
    world = build_world(AZUREML_COMPUTE="gpu-cluster")
    world.wire.workspace.add_cluster("gpu-cluster", "Standard_NC96ads_A100_v4")
    world.platform.submit(spec())
    inputs = world.node_inputs("ft-run-1")
    assert inputs["compute_finetune"] == "gpu-cluster" and inputs["compute_preprocess"] == "gpu-cluster"
    assert inputs["number_of_gpu_to_use_finetuning"] == "4"
    assert "instance_type_finetune" not in inputs
    assert world.job("ft-run-1")["displayName"].startswith("Phi-4-chats-bs4-")
    assert not [r for r in world.wire.transport.requests if r.path.endswith("/vmSizes")]


def test_gpus_of_an_unknown_size_need_the_subscription_wide_vm_size_list_which_is_refused() -> None:
    world = build_world(AZUREML_COMPUTE="odd-cluster")
    world.wire.workspace.add_cluster("odd-cluster", "Standard_NC96ads_A100_v4_custom")
    world.wire.registry.publish_model("Phi-4.yaml", version=9, system_metadata={})  # no allow-list
    with pytest.raises(ComputeNotAllowed, match="Reader") as refused:
        world.platform.submit(spec())
    assert "Standard_NC96ads_A100_v4_custom" in str(refused.value)
    (denied,) = world.wire.transport.denied
    assert denied.path.endswith("/vmSizes")
    assert writes(world) == []


def test_failed_cluster_is_refused() -> None:
    world = build_world(AZUREML_COMPUTE="gpu-cluster")
    world.wire.workspace.add_cluster("gpu-cluster", "Standard_NC24ads_A100_v4", state="Failed")
    with pytest.raises(ComputeNotAllowed, match="failed state"):
        world.platform.submit(spec())


def test_cluster_outside_the_models_allow_list_is_refused() -> None:
    world = build_world(AZUREML_COMPUTE="gpu-cluster")
    world.wire.workspace.add_cluster("gpu-cluster", "Standard_NC6s_v3")
    with pytest.raises(ComputeNotAllowed) as refused:
        world.platform.submit(spec())
    assert all(sku in str(refused.value) for sku in A100_SKUS)
    assert writes(world) == []


def test_the_2025_allow_list_tag_is_read() -> None:
    world = build_world(BASE_MODEL="Phi-3-mini-4k-instruct:16",
                        AZUREML_INSTANCE_TYPE_FINETUNE="Standard_NC40ads_H100_v5")
    world.wire.registry.publish_model("phi-3-mini-4k-instruct-2025.yaml", version=16,
                                      tags={"finetune_compute_allow_list": "['Standard_NC24ads_A100_v4']"})
    with pytest.raises(ComputeNotAllowed, match="Standard_NC24ads_A100_v4"):
        world.platform.submit(spec())


def test_deny_listed_size_is_refused_without_an_allow_list() -> None:
    world = build_world(AZUREML_COMPUTE="k80")
    world.wire.registry.publish_model("Phi-4.yaml", version=9, system_metadata={})
    world.wire.workspace.add_cluster("k80", "Standard_NC6")
    with pytest.raises(ComputeNotAllowed, match="not supported"):
        world.platform.submit(spec())


def test_run_overrides_beat_the_models_defaults() -> None:
    world = build_world()
    world.platform.submit(spec(parameters={"learning_rate": "1e-5", "num_train_epochs": "2"}))
    inputs = world.node_inputs("ft-run-1")
    assert float(inputs["learning_rate"]) == pytest.approx(1e-5) and inputs["num_train_epochs"] == "2"


def test_an_explicit_choice_equal_to_a_seed_default_still_beats_the_models_default() -> None:
    world = build_world()
    world.platform.submit(spec(parameters={"deepspeed_stage": "2"}))  # Phi-4's own default is 3
    assert world.node_inputs("ft-run-1")["deepspeed_stage"] == "2"


def test_unknown_parameter_is_refused_with_the_valid_names() -> None:
    world = build_world()
    with pytest.raises(InvalidParameters) as refused:
        world.platform.submit(spec(parameters={"epochs": 2}))
    assert "epochs" in str(refused.value) and "num_train_epochs" in str(refused.value)
    assert writes(world) == []


def test_job_status_follows_the_job_and_a_missing_job_is_not_found() -> None:
    world = build_world()
    world.platform.submit(spec())
    world.wire.workspace.finish_job("ft-run-1", "Failed")
    state = world.platform.job_status("ft-run-1")
    assert state.terminal and state.status == "Failed" and state.error
    with pytest.raises(NotFoundError):
        world.platform.job_status("nope")


def test_start_from_live_passes_the_registered_fine_tune_as_mlflow_model_path() -> None:
    """The real 0.0.82 spec (the fake refuses an input it does not declare, or of the wrong type)."""
    world = build_world()
    world.platform.submit(spec(start_from=ModelRef("ft-support", "3"), parameters={
        "apply_early_stopping": "true", "early_stopping_patience": 2, "early_stopping_threshold": 0.01,
        "metric_for_best_model": "loss"}))
    inputs = world.node_inputs("ft-run-1")
    # The SDK sends the workspace model's ARM id for azureml:ft-support:3.
    assert inputs["mlflow_model_path"].endswith("/workspaces/mlw-autopilot/models/ft-support/versions/3")
    (node,) = world.job("ft-run-1")["jobs"].values()
    assert node["inputs"]["mlflow_model_path"]["job_input_type"] == "mlflow_model"
    assert world.job("ft-run-1")["tags"]["autopilot-start-from"] == "ft-support:3"
    # Early stopping: the same keys the local engine reads, as the pipeline's own inputs.
    assert (inputs["apply_early_stopping"], inputs["early_stopping_patience"],
            inputs["early_stopping_threshold"], inputs["metric_for_best_model"]) == (
        "true", "2", "0.01", "loss")
