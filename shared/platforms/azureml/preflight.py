"""Pre-flight: what a submit and a deploy would refuse, asked of Azure with reads only, before any upload.

`autopilot check-azure` runs it with the app's settings and the caller's sign-in (`az login`, or the app's
identity where it runs): the base model (not archived, not past its fine-tune retirement date, read from the
registry as a submit reads it), the pipeline component, the compute against the model's fine-tune allow-list,
the inference size against its inference allow-list, and the endpoint name (free, or already ours).
Nothing is created, staged or submitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.platforms.azureml.base_model import BaseModel
from shared.platforms.azureml.compute import check_size, plan_compute
from shared.platforms.azureml.endpoints import existing_endpoint
from shared.platforms.azureml.errors import translate
from shared.platforms.azureml.pipeline import load_pipeline_component
from shared.platforms.port import MANAGED_TAG, PlatformError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def preflight(platform: Any) -> list[Check]:
    """Every check, each run even when an earlier one failed (those that need the model are skipped then)."""
    return list(_checks(platform))


def _run(name: str, check: Callable[[], str]) -> Check:
    try:
        return Check(name, True, check())
    except PlatformError as error:
        return Check(name, False, str(error))
    except Exception as error:  # an SDK error outside azure_call: still one line, translated
        return Check(name, False, str(translate(error, name)))


def _checks(platform: Any) -> Iterator[Check]:
    settings = platform.settings
    aml = settings.azureml
    found: list[BaseModel] = []

    def base_model() -> str:
        model = platform.base_model(settings.base_model)
        found.append(model)
        return f"{model.name} version {model.version} ({model.id}) can be fine-tuned"

    yield _run(f"base model {settings.base_model} (BASE_MODEL)", base_model)

    def component() -> str:
        loaded = load_pipeline_component(platform.registry, aml.pipeline_component_version)
        return f"{loaded.name} {loaded.version} in registry {aml.registry}"

    yield _run("fine-tune pipeline (AZUREML_PIPELINE_VERSION)", component)
    if found:
        model = found[0]

        def compute() -> str:
            planned = plan_compute(platform.ml, aml, model)
            return f"{planned.compute} on {planned.instance_type}, {planned.gpus_per_node} GPU(s) per node"

        def inference() -> str:
            check_size(aml.instance_type_inference, model.inference_skus,
                       f"inference instance type (AZUREML_INSTANCE_TYPE_INFERENCE) for {model.name}",
                       unsupported=frozenset())
            return f"{aml.instance_type_inference} is in {model.name}'s inference allow-list"

        yield _run("fine-tune compute (AZUREML_COMPUTE, AZUREML_INSTANCE_TYPE_FINETUNE)", compute)
        yield _run("inference instance type (AZUREML_INSTANCE_TYPE_INFERENCE)", inference)

    def endpoint() -> str:
        name = settings.endpoint_name
        existing = existing_endpoint(platform.ml, name)
        if existing is None:
            return f"{name} is free in the workspace (Azure checks the region when it is created)"
        if (existing.tags or {}).get(MANAGED_TAG) != "true":
            raise PlatformError(f"endpoint {name} exists and is not managed by the autopilot; set "
                                "ENDPOINT_NAME to another name")
        return f"{name} exists and is ours"

    yield _run(f"endpoint name {settings.endpoint_name} (ENDPOINT_NAME)", endpoint)
