"""Register the job's trained model (an MLflow model) in the workspace, once per job.

The version is derived from the job's name, so a retried registration finds the version it created before
instead of adding a second one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Model
from azure.core.exceptions import ResourceNotFoundError

from shared.platforms.azureml.errors import azure_call, translate
from shared.platforms.azureml.pipeline import BASE_MODEL_TAG, TRAINED_MODEL_OUTPUT, find_job, job_state
from shared.platforms.port import NotFoundError, PlatformError

JOB_TAG = "autopilot-job"
_MAX_NAME = 255
_MAX_VERSION = 50


def _sanitise(text: str, limit: int) -> str:
    # Azure asset names and versions: start alphanumeric; then letters, digits, '-', '_', '.'.
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    cleaned = re.sub(r"-{2,}", "-", cleaned)
    if len(cleaned) > limit:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[: limit - 9].rstrip('-._')}-{digest}"
    return cleaned or "model"


def model_name(requested: str) -> str:
    """`requested` made a valid Azure ML model name (slashes and spaces become '-', at most 255 chars)."""
    return _sanitise(requested, _MAX_NAME)


def model_version(job_name: str) -> str:
    """The model version for a job: the same job always gets the same version."""
    return _sanitise(job_name, _MAX_VERSION)


def register_model(ml: Any, job_name: str, requested_name: str, tags: Mapping[str, str],
                   description: str) -> Model:
    """Register azureml://jobs/{job}/outputs/trained_model, or return the version registered before."""
    name, version = model_name(requested_name), model_version(job_name)
    try:
        existing: Model = ml.models.get(name, version=version)
        return existing
    except ResourceNotFoundError:
        pass
    except Exception as error:
        raise translate(error, f"look up model {name}:{version}") from error
    job = find_job(ml, job_name)
    if job is None:
        raise NotFoundError(f"job {job_name} not found; cannot register its model")
    state = job_state(job)
    if state.status != "Completed":
        raise PlatformError(f"job {job_name} is {state.status}; only a completed job's model can be "
                            "registered")
    lineage = {JOB_TAG: job_name}
    if job.tags and BASE_MODEL_TAG in job.tags:
        lineage[BASE_MODEL_TAG] = job.tags[BASE_MODEL_TAG]
    model = Model(
        path=f"azureml://jobs/{job_name}/outputs/{TRAINED_MODEL_OUTPUT}",
        type=AssetTypes.MLFLOW_MODEL,
        name=name,
        version=version,
        description=description or f"fine-tuned by job {job_name}",
        tags={**tags, **lineage},
    )
    with azure_call(f"register model {name}:{version} from job {job_name}"):
        registered: Model = ml.models.create_or_update(model)
    return registered
