"""The fine-tune job: chat_completion_pipeline from the registry, built as the seed built it, submitted once.

The job's name is the run's (JobSpec.name), so a second submit finds the first job, not a new one.
Its tags carry our run id, content hash and base model; Azure ML echoes them in the job events' runTags.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.ai.ml import Input
from azure.ai.ml.dsl import pipeline
from azure.ai.ml.entities import PipelineJob, PipelineJobSettings
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from shared.finetune import ParameterValue
from shared.platforms.azureml.base_model import BaseModel
from shared.platforms.azureml.compute import FinetuneCompute
from shared.platforms.azureml.errors import azure_call, translate
from shared.platforms.port import RUN_TAG, JobSpec, JobState

PIPELINE_COMPONENT = "chat_completion_pipeline"
TASK = "ChatCompletion"  # the component's only required input (it has a default; we do not rely on it)
TRAINED_MODEL_OUTPUT = "trained_model"
BASE_MODEL_TAG = "autopilot-base-model"
START_FROM_TAG = "autopilot-start-from"  # the registered fine-tune a run trained further


def load_pipeline_component(registry: Any, version: str | None) -> Any:
    """The registry's chat_completion_pipeline: pinned (AZUREML_PIPELINE_VERSION) or label latest."""
    with azure_call(f"load {PIPELINE_COMPONENT} from the registry (setting AZUREML_PIPELINE_VERSION)"):
        if version:
            return registry.components.get(name=PIPELINE_COMPONENT, version=version)
        return registry.components.get(name=PIPELINE_COMPONENT, label="latest")


def compute_inputs(compute: FinetuneCompute) -> dict[str, ParameterValue]:
    """The four compute inputs (and, serverless, the instance types) plus GPUs per node."""
    inputs: dict[str, ParameterValue] = {
        f"compute_{step}": compute.compute
        for step in ("model_import", "preprocess", "finetune", "model_evaluation")
    }
    if compute.serverless:
        # The component's own default instance types are V100 sizes; run training and evaluation on ours.
        inputs["instance_type_finetune"] = compute.instance_type
        inputs["instance_type_model_evaluation"] = compute.instance_type
    inputs["number_of_gpu_to_use_finetuning"] = compute.gpus_per_node
    return inputs


def build_job(component: Any, spec: JobSpec, model: BaseModel, parameters: Mapping[str, ParameterValue],
              display_name: str) -> PipelineJob:
    """The pipeline job: the component with model, data, compute and parameters; output trained_model.

    The model is the registry's base model, or (`spec.start_from`, a manifest's `"start_from": "live"`) the
    workspace's registered fine-tune of it, which the component imports the same way (an MLflow model).
    """
    start = (Input(type="mlflow_model", path=f"azureml:{spec.start_from.name}:{spec.start_from.version}")
             if spec.start_from is not None else model.id)

    def chat_completion_finetune() -> dict[str, Any]:
        finetune = component(
            task_name=TASK,
            mlflow_model_path=start,
            train_file_path=Input(type="uri_file", path=spec.train_uri),
            test_file_path=Input(type="uri_file", path=spec.test_uri),
            **parameters,
        )
        return {TRAINED_MODEL_OUTPUT: finetune.outputs.mlflow_model_folder}

    job = pipeline(chat_completion_finetune, name=display_name)()
    job.name = spec.name
    job.display_name = display_name
    job.experiment_name = spec.experiment
    job.tags = {**spec.tags, RUN_TAG: spec.run_id, BASE_MODEL_TAG: model.id}
    if spec.start_from is not None:
        job.tags[START_FROM_TAG] = f"{spec.start_from.name}:{spec.start_from.version}"
    job.settings = job.settings or PipelineJobSettings()
    job.settings.force_rerun = True  # never reuse a cached step of an earlier run
    job.settings.continue_on_step_failure = False
    return job


def find_job(ml: Any, name: str) -> Any | None:
    """The job of that name, or None."""
    try:
        return ml.jobs.get(name)
    except ResourceNotFoundError:
        return None
    except Exception as error:
        raise translate(error, f"get job {name}") from error


def submit_job(ml: Any, job: PipelineJob) -> Any:
    """Create the job; if another submit created it meanwhile, return that one."""
    try:
        return ml.jobs.create_or_update(job, experiment_name=job.experiment_name)
    except (ResourceExistsError, HttpResponseError) as error:
        if isinstance(error, ResourceExistsError) or "already exists" in str(error.message or "").lower():
            return ml.jobs.get(job.name)
        raise translate(error, f"submit job {job.name}") from error
    except Exception as error:
        raise translate(error, f"submit job {job.name}") from error


def job_state(job: Any) -> JobState:
    """The port's view of an Azure ML job."""
    status = str(getattr(job.status, "value", job.status) or "Unknown")
    error = None
    if status in ("Failed", "NotResponding"):
        error = f"job {job.name} ended {status}; see its logs in Azure ML studio"
    return JobState(name=job.name, status=status, error=error, studio_url=getattr(job, "studio_url", None))
