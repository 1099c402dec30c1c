"""The base model: resolved from the registry, refused if archived or retired; its allow-lists and defaults.

The registry has moved its metadata over time, so each fact is read from every place it has lived: the old
tags (`finetune_compute_allow_list`, `FinetuneRetirementDate`, `model_specific_defaults`), the properties
(`finetune-recommended-sku`) and, since 2026, `system_metadata` (`SKU.finetuneRecommendedSkus`,
`finetuneRetirementDate`, `isArchived`).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from shared.finetune import parse_model_specific_defaults
from shared.platforms.azureml.errors import ModelRetired, azure_call

SUGGESTED_MODEL = "Phi-4"
_ASSET_ID = re.compile(r"^azureml://registries/[^/]+/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")


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


def resolve_base_model(registry: Any, reference: str, today: date,
                       registry_name: str = "azureml") -> BaseModel:
    """Get the model from the registry (label `latest` unless a version is given) and refuse a retired one.

    Raises ModelRetired before anything is submitted, naming the date and the BASE_MODEL setting.
    """
    name, version = parse_reference(reference)
    with azure_call(f"look up base model {name} in registry {registry_name} (setting BASE_MODEL)"):
        model = (registry.models.get(name, version=version) if version
                 else registry.models.get(name, label="latest"))
    metadata = _metadata(model)
    where = f"base model {model.name} (version {model.version}, registry {registry_name})"
    if _truthy(_find(metadata, "isArchived")) or str(getattr(model, "stage", "") or "").lower() == "archived":
        raise ModelRetired(f"{where} is archived and can no longer be fine-tuned; set BASE_MODEL to a "
                           f"current model, e.g. {SUGGESTED_MODEL}")
    retirement = _date(_find(metadata, "finetuneRetirementDate"))
    if retirement is not None and retirement <= today:
        raise ModelRetired(f"{where} was retired for fine-tuning on {retirement.isoformat()}; set BASE_MODEL "
                           f"to a current model, e.g. {SUGGESTED_MODEL}")
    return BaseModel(
        name=model.name,
        version=str(model.version),
        id=model.id or f"azureml://registries/{registry_name}/models/{model.name}/versions/{model.version}",
        finetune_skus=_skus(metadata, ("finetune_compute_allow_list", "finetuneRecommendedSkus",
                                       "finetune-recommended-sku")),
        inference_skus=_skus(metadata, ("inference_compute_allow_list", "inferenceRecommendedSkus",
                                        "inference-recommended-sku")),
        model_specific_defaults=parse_model_specific_defaults(_find(metadata, "model_specific_defaults")),
    )


def _metadata(model: Any) -> list[Mapping[str, Any]]:
    # Newest home first: system_metadata (and its SKU section), then tags, then properties.
    system = getattr(model, "_system_metadata", None) or {}
    if isinstance(system, str):
        system = json.loads(system)
    sources: list[Mapping[str, Any]] = [system]
    sku = system.get("SKU") or system.get("sku")
    if isinstance(sku, Mapping):
        sources.append(sku)
    sources += [model.tags or {}, model.properties or {}]
    return sources


def _find(sources: Iterable[Mapping[str, Any]], key: str) -> Any:
    wanted = key.lower()
    for source in sources:
        for name, value in source.items():
            if name.lower() == wanted and value not in (None, ""):
                return value
    return None


def _skus(sources: list[Mapping[str, Any]], keys: tuple[str, ...]) -> tuple[str, ...] | None:
    for key in keys:
        value = _find(sources, key)
        if value is not None:
            return tuple(_as_list(value))
    return None


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    value = text.strip("[]").split(",")
        else:
            value = text.split(",")
    return [str(v).strip().strip("'\"") for v in value if str(v).strip()]


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def _date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


def inference_skus(registry: Any, asset_id: str) -> tuple[str, ...] | None:
    """The inference allow-list of the base model with that asset id (None if the model declares none)."""
    name, version = parse_reference(asset_id)
    with azure_call(f"look up base model {name} for its inference allow-list"):
        model = (registry.models.get(name, version=version) if version
                 else registry.models.get(name, label="latest"))
    return _skus(_metadata(model), ("inference_compute_allow_list", "inferenceRecommendedSkus",
                                    "inference-recommended-sku"))
