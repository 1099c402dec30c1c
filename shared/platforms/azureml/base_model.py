"""The base model: resolved from the registry, refused if archived or retired; its allow-lists and defaults.

Where the facts are on the wire (azureml-assets' model specs, as the registry publishes them): since 2026 the
SKU allow-lists and the fine-tune retirement date are in the version's `system_metadata` (`SKU.
finetuneRecommendedSkus`, `deprecation.finetuneRetirementDate`), the archived flag is the version's
`isArchived`; older versions carry them as tags (`finetune_compute_allow_list`, `FinetuneRetirementDate`) and
properties (`finetune-recommended-sku`). azure-ai-ml 1.35's `Model` keeps tags and properties but drops
`isArchived` and `system_metadata` of registry reads, so `RegistryReads` keeps the JSON of each model
version the registry client reads (an azure-core `raw_response_hook`) and the facts are read from there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from azure.ai.ml.constants import ListViewType
from azure.ai.ml.exceptions import ValidationException
from azure.core.exceptions import ResourceNotFoundError

from shared.finetune import parse_model_specific_defaults
from shared.platforms.azureml.errors import ModelNotFound, ModelRetired, translate
from shared.settings import DEFAULT_BASE_MODEL

SUGGESTED_MODEL = DEFAULT_BASE_MODEL["azureml"]  # declared once, with BASE_MODEL, in shared/settings.py
_ASSET_ID = re.compile(r"^azureml://registries/[^/]+/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")
_FINETUNE_SKUS = ("finetuneRecommendedSkus", "finetune_compute_allow_list", "finetune-recommended-sku")
_INFERENCE_SKUS = ("inferenceRecommendedSkus", "inference_compute_allow_list", "inference-recommended-sku")


class RegistryReads:
    """The JSON of the model versions the registry client read, by asset id (a raw_response_hook)."""

    def __init__(self) -> None:
        self._versions: dict[str, Mapping[str, Any]] = {}

    def __call__(self, response: Any) -> None:
        http = response.http_response
        if response.http_request.method != "GET" or http.status_code != 200 or "/models/" not in str(
                response.http_request.url):
            return
        try:
            body = json.loads(http.text())
        except ValueError:
            return
        for version in body.get("value", [body]) if isinstance(body, dict) else ():
            if isinstance(version, dict) and "/models/" in str(version.get("id", "")):
                self._versions[str(version["id"]).lower()] = version

    def version(self, asset_id: str | None) -> Mapping[str, Any]:
        return self._versions.get(str(asset_id or "").lower(), {})


@dataclass(frozen=True)
class BaseModel:
    """What the adapter needs from the registry's model."""

    name: str
    version: str
    id: str
    finetune_skus: tuple[str, ...] | None = None
    inference_skus: tuple[str, ...] | None = None
    model_specific_defaults: Mapping[str, Any] = field(default_factory=dict)


def parse_reference(reference: str) -> tuple[str, str | None]:
    """'Phi-4' (latest), 'Phi-4:7' (version 7) or an azureml://registries/... asset id → (name, version)."""
    match = _ASSET_ID.match(reference.strip())
    if match:
        return match["name"], match["version"]
    name, _, version = reference.strip().partition(":")
    return name, (version or None) if version != "latest" else None


def get_model(registry: Any, reference: str, registry_name: str) -> Any:
    """The registry's model for BASE_MODEL (label `latest` unless a version is given).

    Raises ModelNotFound when the registry has no such (active) model, with what to set instead.
    """
    name, version = parse_reference(reference)
    try:
        if version:
            return registry.models.get(name, version=version)
        try:
            return registry.models.get(name, label="latest")
        except ValidationException:
            # `latest` sees active versions only: a retired model's are archived. Its newest version says why.
            archived = _archived_latest_version(registry, name)
            if archived is None:
                raise
            return registry.models.get(name, version=archived)
    except (ResourceNotFoundError, ValidationException) as error:
        pinned = f"version {version} of " if version else ""
        raise ModelNotFound(
            f"base model {pinned}{name} is not in registry {registry_name}, or none of its versions is "
            f"active (a model retired for fine-tuning has only archived versions); set BASE_MODEL to a "
            f"current "
            f"model, e.g. {SUGGESTED_MODEL}") from error
    except Exception as error:
        action = f"look up base model {name} in registry {registry_name} (setting BASE_MODEL)"
        raise translate(error, action) from error


def _archived_latest_version(registry: Any, name: str) -> str | None:
    # The enum's value, not the enum: azure-ai-ml 1.35 puts str(ListViewType.ARCHIVED_ONLY) on the wire as is.
    for container in registry.models.list(list_view_type=ListViewType.ARCHIVED_ONLY.value):
        if str(container.name).lower() == name.lower() and container.latest_version:
            return str(container.latest_version)
    return None


def resolve_base_model(registry: Any, reads: RegistryReads, reference: str, today: date,
                       registry_name: str = "azureml") -> BaseModel:
    """The base model, refused (ModelRetired, naming the date) if archived or past fine-tune retirement."""
    model = get_model(registry, reference, registry_name)
    facts = _facts(model, reads.version(model.id))
    where = f"base model {model.name} (version {model.version}, registry {registry_name})"
    retirement = _date(_find(facts, "finetuneRetirementDate", "FinetuneRetirementDate"))
    retired = f" and was retired for fine-tuning on {retirement.isoformat()}" if retirement else ""
    if _archived(model, reads.version(model.id)):
        raise ModelRetired(f"{where} is archived{retired}; set BASE_MODEL to a current model, e.g. "
                           f"{SUGGESTED_MODEL}")
    if retirement is not None and retirement <= today:
        raise ModelRetired(f"{where} was retired for fine-tuning on {retirement.isoformat()}; set BASE_MODEL "
                           f"to a current model, e.g. {SUGGESTED_MODEL}")
    return BaseModel(
        name=model.name,
        version=str(model.version),
        id=model.id or f"azureml://registries/{registry_name}/models/{model.name}/versions/{model.version}",
        finetune_skus=_skus(facts, _FINETUNE_SKUS),
        inference_skus=_skus(facts, _INFERENCE_SKUS),
        model_specific_defaults=parse_model_specific_defaults(_find(facts, "model_specific_defaults")),
    )


def inference_skus(registry: Any, reads: RegistryReads, asset_id: str) -> tuple[str, ...] | None:
    """The inference allow-list of the base model with that asset id (None if the model declares none)."""
    name, version = parse_reference(asset_id)
    model = get_model(registry, f"{name}:{version}" if version else name, "the base model's registry")
    return _skus(_facts(model, reads.version(model.id)), _INFERENCE_SKUS)


def _facts(model: Any, wire: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # Newest home first: system_metadata (and its SKU and deprecation sections), then tags, then properties.
    properties = wire.get("properties") or {}
    system = properties.get("system_metadata") or properties.get("systemMetadata") or {}
    if isinstance(system, str):
        system = json.loads(system)
    sources: list[Mapping[str, Any]] = [system]
    sources += [system[k] for k in ("SKU", "deprecation") if isinstance(system.get(k), Mapping)]
    return [*sources, model.tags or {}, model.properties or {}]


def _archived(model: Any, wire: Mapping[str, Any]) -> bool:
    properties = wire.get("properties") or {}
    stage = str(getattr(model, "stage", "") or "").lower()
    return properties.get("isArchived") is True or stage == "archived"


def _find(sources: Iterable[Mapping[str, Any]], *keys: str) -> Any:
    wanted = {k.lower() for k in keys}
    for source in sources:
        for name, value in source.items():
            if name.lower() in wanted and value not in (None, ""):
                return value
    return None


def _skus(sources: list[Mapping[str, Any]], keys: tuple[str, ...]) -> tuple[str, ...] | None:
    value = _find(sources, *keys)
    return None if value is None else tuple(_as_list(value))


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else text.split(",")
        except ValueError:
            value = text.strip("[]").split(",")
    return [str(v).strip().strip("'\"") for v in value if str(v).strip()]


def _date(value: Any) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None
