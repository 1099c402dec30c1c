"""The azureml system registry: discovery, then its data plane (model and component versions).

Its content is azureml-assets' own specs (tests/fakes/wire/assets), published the way the SDK publishes an
asset: tag and property values become strings, system metadata rides under `properties.system_metadata`, and
the asset's `isArchived` is the version's. Lists hide archived versions unless asked (`listViewType`), so an
all-archived model has no `latest`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.fakes.wire.arm import Clock, envelope, not_found, user_error
from tests.fakes.wire.examples import example
from tests.fakes.wire.http import Reply, WireRequest, WireTransport, ok
from tests.fakes.wire.ids import (
    PROVIDER,
    REGISTRY,
    REGISTRY_HOST,
    REGISTRY_RESOURCE_GROUP,
    REGISTRY_SUBSCRIPTION,
)

ASSETS = Path(__file__).with_name("assets")
VIEWS = frozenset({"ActiveOnly", "ArchivedOnly", "All"})
DISCOVERY_HOST = "eastus.api.azureml.ms"  # azure-ai-ml's default-cloud registry discovery endpoint
DATA_PLANE = re.escape(f"{REGISTRY_HOST}/mferp/managementfrontend/subscriptions/{REGISTRY_SUBSCRIPTION}"
                       f"/resourceGroups/{REGISTRY_RESOURCE_GROUP}/providers/{PROVIDER}/registries/{REGISTRY}")


@dataclass
class _Version:
    body: dict[str, Any]
    created: datetime
    archived: bool = False
    spec: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Model and component versions by (name, version), in publishing order."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.models: dict[tuple[str, str], _Version] = {}
        self.components: dict[tuple[str, str], _Version] = {}

    def mount(self, wire: WireTransport) -> None:
        discovery = rf"{re.escape(DISCOVERY_HOST)}/registrymanagement/v1\.0/registries/{REGISTRY}/discovery"
        wire.route("GET", discovery,
                   lambda request, match: ok(example("registry_discovery")))
        for plural, store in (("models", self.models), ("components", self.components)):
            wire.route("GET", rf"{DATA_PLANE}/{plural}/(?P<name>[^/]+)/versions/(?P<version>[^/]+)",
                       self._getter(store))
            wire.route("GET", rf"{DATA_PLANE}/{plural}/(?P<name>[^/]+)/versions", self._lister(store))
        wire.route("GET", rf"{DATA_PLANE}/models", self.list_model_containers)

    # -- publishing ---------------------------------------------------------------------------------------

    def publish_model(self, spec_file: str, **changes: Any) -> str:
        """Publish azureml-assets' model spec `spec_file` (with `changes` on top); returns its asset id."""
        spec = {**yaml.safe_load((ASSETS / spec_file).read_text(encoding="utf-8")), **changes}
        name, version = str(spec["name"]), str(spec["version"])
        asset_id = f"azureml://registries/{REGISTRY}/models/{name}/versions/{version}"
        properties = {
            "description": spec.get("description"),
            "tags": {k: str(v) for k, v in (spec.get("tags") or {}).items()},
            "properties": {k: str(v) for k, v in (spec.get("properties") or {}).items()},
            "isAnonymous": False, "isArchived": bool(spec.get("isArchived", False)), "stage": None,
            "flavors": {}, "modelType": spec.get("type", "mlflow_model"), "modelUri": asset_id,
        }
        if spec.get("system_metadata") is not None:
            properties["system_metadata"] = spec["system_metadata"]
        self.models[(name, version)] = self._version(asset_id, "models/versions", properties,
                                                     properties["isArchived"])
        return asset_id

    def publish_component(self, spec_file: str, **changes: Any) -> str:
        """Publish azureml-assets' component spec `spec_file` (top-level `changes` on top); its asset id."""
        spec = {**yaml.safe_load((ASSETS / spec_file).read_text(encoding="utf-8")), **changes}
        name, version = str(spec["name"]), str(spec["version"])
        asset_id = f"azureml://registries/{REGISTRY}/components/{name}/versions/{version}"
        properties = {"description": spec.get("description"), "tags": {}, "properties": {},
                      "isAnonymous": False, "isArchived": False, "componentSpec": spec}
        self.components[(name, version)] = self._version(asset_id, "components/versions", properties, False)
        self.components[(name, version)].spec = spec
        return asset_id

    def _version(self, asset_id: str, kind: str, properties: dict[str, Any], archived: bool) -> _Version:
        # Publishing order decides `latest` even when the test clock stands still.
        created = self.clock() + timedelta(microseconds=len(self.models) + len(self.components))
        body = envelope(asset_id, f"{PROVIDER}/registries/{kind}", properties, created)
        body["name"] = asset_id.rsplit("/", 1)[-1]
        return _Version(body, created, archived)

    def component_spec(self, component_id: str) -> dict[str, Any] | None:
        """The spec of the component with that asset id (what a pipeline node names), or None."""
        for version in self.components.values():
            if version.body["id"] == component_id:
                return version.spec
        return None

    # -- the data plane -----------------------------------------------------------------------------------

    def list_model_containers(self, request: WireRequest, match: re.Match[str]) -> Reply:
        """Model containers (one per name): archived when all its versions are; `listViewType` filters."""
        view = request.query.get("listViewType", "ActiveOnly")
        if view not in VIEWS:
            return user_error(f"listViewType {view!r} is not one of {sorted(VIEWS)}")
        containers = []
        for name in dict.fromkeys(n for n, _ in self.models):
            versions = [v for (n, _), v in self.models.items() if n == name]
            archived = all(v.archived for v in versions)
            if view == "All" or archived == (view == "ArchivedOnly"):
                latest = max(versions, key=lambda v: v.created)
                container = envelope(f"azureml://registries/{REGISTRY}/models/{name}",
                                     f"{PROVIDER}/registries/models", {
                                         "description": None, "tags": {}, "properties": {},
                                         "isArchived": archived, "latestVersion": latest.body["name"],
                                         "nextVersion": str(len(versions) + 1)}, latest.created)
                containers.append(container)
        return ok({"value": containers, "nextLink": None})

    @staticmethod
    def _getter(store: dict[tuple[str, str], _Version]) -> Any:
        def get(request: WireRequest, match: re.Match[str]) -> Reply:
            found = store.get((match["name"], match["version"]))
            return ok(found.body) if found else not_found("asset", f"{match['name']}:{match['version']}")
        return get

    @staticmethod
    def _lister(store: dict[tuple[str, str], _Version]) -> Any:
        def listing(request: WireRequest, match: re.Match[str]) -> Reply:
            view = request.query.get("listViewType", "ActiveOnly")
            if view not in VIEWS:
                return user_error(f"listViewType {view!r} is not one of {sorted(VIEWS)}")
            versions = [v for (name, _), v in store.items() if name == match["name"]
                        and (view == "All" or v.archived == (view == "ArchivedOnly"))]
            if request.query.get("$orderBy", "").lower().startswith("createdtime"):
                newest_first = request.query["$orderBy"].lower().endswith("desc")
                versions.sort(key=lambda v: v.created, reverse=newest_first)
            top = int(request.query.get("$top", len(versions) or 1))
            return ok({"value": [v.body for v in versions[:top]], "nextLink": None})
        return listing

