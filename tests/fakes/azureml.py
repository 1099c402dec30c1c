"""In-memory Azure ML: the operation groups of MLClient the adapter uses, holding the SDK's real entities.

Every write goes through the entity's own REST serialization (`_to_rest_object` and friends) and every read
comes back through `_from_rest_object`, as with the service; an entity the SDK cannot serialize
fails here too.
On top, the rules the service enforces that the SDK does not: a pipeline node may pass only the inputs its
component declares, in their types; traffic goes only to existing deployments and sums to 100 (or 0); a
deployment with traffic cannot be deleted; a request timeout is at most 180000 ms.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from azure.ai.ml import load_component
from azure.ai.ml.entities import AmlCompute, Component, Job, Model, VmSize
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from tests.fakes._common import WORKSPACE_ID, user_error
from tests.fakes.online import FakeOnlineDeployments, FakeOnlineEndpoints

COMPONENT_SPEC = Path(__file__).with_name("chat_completion_pipeline.yaml")


class FakeModels:
    """models: create_or_update, get (version or label latest), list."""

    def __init__(self, id_prefix: str) -> None:
        self._prefix = id_prefix
        self._rest: dict[tuple[str, str], Any] = {}

    def create_or_update(self, model: Model) -> Model:
        rest = model._to_rest_object()
        rest.id = f"{self._prefix}/models/{model.name}/versions/{model.version}"
        rest.properties.flavors = rest.properties.flavors or {}  # the service always answers with a dict
        self._rest[(str(model.name), str(model.version))] = rest
        return Model._from_rest_object(copy.deepcopy(rest))

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        if label == "latest":
            versions = [v for (n, v) in self._rest if n == name]
            if not versions:
                raise ResourceNotFoundError(f"model {name} not found")
            version = versions[-1]  # latest = most recently created
        if (name, str(version)) not in self._rest:
            raise ResourceNotFoundError(f"model {name}:{version} not found")
        return Model._from_rest_object(copy.deepcopy(self._rest[(name, str(version))]))

    def list(self, name: str | None = None) -> list[Model]:
        return [Model._from_rest_object(copy.deepcopy(r)) for (n, _), r in self._rest.items()
                if name in (None, n)]


class FakeComponents:
    """components of a registry: the chat_completion_pipeline spec under tests/fakes, served with its id."""

    def __init__(self, registry: str, specs: Iterable[Path] = (COMPONENT_SPEC,)) -> None:
        self._by_key: dict[tuple[str, str], Any] = {}
        for spec in specs:
            rest: Any = load_component(spec)._to_rest_object()
            name, version = rest.properties.component_spec["name"], rest.properties.component_spec["version"]
            rest.id = f"azureml://registries/{registry}/components/{name}/versions/{version}"
            rest.name = version
            self._by_key[(name, version)] = rest

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Component:
        if label == "latest":
            versions = sorted((v for (n, v) in self._by_key if n == name),
                              key=lambda v: [int(p) for p in v.split(".")])
            version = versions[-1] if versions else None
        if (name, version) not in self._by_key:
            raise ResourceNotFoundError(f"component {name}:{version} not found")
        return Component._from_rest_object(copy.deepcopy(self._by_key[(name, str(version))]))

    def by_id(self, component_id: str) -> Component | None:
        for rest in self._by_key.values():
            if rest.id == component_id:
                return Component._from_rest_object(copy.deepcopy(rest))
        return None


class FakeJobs:
    """jobs: create_or_update (names unique, nodes checked against their components), get."""

    def __init__(self, components: FakeComponents) -> None:
        self._components = components
        self._rest: dict[str, Any] = {}
        self.created: list[Any] = []  # the entities as submitted, for assertions
        self.fail_next: Exception | None = None

    def create_or_update(self, job: Any, *, experiment_name: str | None = None, **_: Any) -> Any:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if job.name in self._rest:
            raise ResourceExistsError(f"a job named {job.name} already exists")
        rest = job._to_rest_object()
        for node in (rest.properties.jobs or {}).values():
            self._check_node(node)
        rest.id = f"{WORKSPACE_ID}/jobs/{job.name}"
        rest.properties.status = "NotStarted"
        rest.properties.experiment_name = experiment_name or rest.properties.experiment_name
        self._rest[job.name] = rest
        self.created.append(job)
        return Job._from_rest_object(copy.deepcopy(rest))

    def _check_node(self, node: dict[str, Any]) -> None:
        component = self._components.by_id(node.get("componentId", ""))
        if component is None:
            raise user_error(f"component {node.get('componentId')} not found")
        for name, value in (node.get("inputs") or {}).items():
            declared = component.inputs.get(name)
            if declared is None:
                raise user_error(f"input {name} is not an input of {component.name}")
            check_input(name, declared, value)
        for name in node.get("outputs") or {}:
            if name not in component.outputs:
                raise user_error(f"output {name} is not an output of {component.name}")

    def get(self, name: str) -> Any:
        if name not in self._rest:
            raise ResourceNotFoundError(f"job {name} not found")
        return Job._from_rest_object(copy.deepcopy(self._rest[name]))

    def set_status(self, name: str, status: str) -> None:
        self._rest[name].properties.status = status


def check_input(name: str, declared: Any, value: dict[str, Any]) -> None:
    """The service's check of one node input against the component's declaration."""
    kind = value.get("job_input_type")
    if declared.type in ("string", "integer", "number", "boolean"):
        if kind != "literal":
            raise user_error(f"input {name} must be a literal {declared.type}, got {kind}")
        literal = str(value.get("value"))
        try:
            if declared.type == "integer":
                int(literal)
            elif declared.type == "number":
                float(literal)
        except ValueError:
            raise user_error(f"input {name}={literal!r} is not a valid {declared.type}") from None
        enum = declared.get("enum")
        if enum and literal not in [str(e) for e in enum]:
            raise user_error(f"input {name}={literal!r} is not one of {enum}")
    elif kind != declared.type:
        raise user_error(f"input {name} must be {declared.type}, got {kind}")


def _size(name: str, gpus: int) -> VmSize:
    return VmSize(name=name, gpus=gpus)  # type: ignore[abstract]


class FakeCompute:
    """compute: get a cluster, list_sizes of the region."""

    def __init__(self) -> None:
        self.clusters: dict[str, AmlCompute] = {}
        self.sizes: list[VmSize] = [
            _size("Standard_NC24ads_A100_v4", 1), _size("Standard_NC48ads_A100_v4", 2),
            _size("Standard_NC96ads_A100_v4", 4), _size("Standard_ND96amsr_A100_v4", 8),
            _size("Standard_NC6", 1), _size("Standard_D4s_v3", 0),
        ]

    def add_cluster(self, name: str, size: str, provisioning_state: str = "Succeeded") -> None:
        cluster = AmlCompute(name=name, size=size, provisioning_state=provisioning_state)
        cluster._to_rest_object()
        self.clusters[name] = cluster

    def get(self, name: str) -> AmlCompute:
        if name not in self.clusters:
            raise ResourceNotFoundError(f"compute {name} not found")
        return copy.deepcopy(self.clusters[name])

    def list_sizes(self, *, location: str | None = None, compute_type: str | None = None) -> list[VmSize]:
        return list(self.sizes)


class FakeRegistryClient:
    """MLClient(registry_name=...): the base models and the fine-tune pipeline component."""

    def __init__(self, name: str = "azureml") -> None:
        self.name = name
        self.models = FakeModels(f"azureml://registries/{name}")
        self.components = FakeComponents(name)


class FakeMLClient:
    """MLClient for a workspace: jobs, models, components, compute, online endpoints and deployments."""

    def __init__(self, registry: FakeRegistryClient, clock: Any = None) -> None:
        self.jobs = FakeJobs(registry.components)
        self.models = FakeModels(WORKSPACE_ID)
        self.components = FakeComponents(registry.name, specs=())
        self.compute = FakeCompute()
        self.online_endpoints = FakeOnlineEndpoints(clock)
        self.online_deployments = FakeOnlineDeployments(self.online_endpoints)


def registry_model(name: str, version: str, *, tags: dict[str, str] | None = None,
                   system_metadata: dict[str, Any] | None = None, stage: str | None = None) -> Model:
    """A base model as the registry publishes it (tags as strings, system_metadata as a dict)."""
    return Model(name=name, version=version, type="mlflow_model", tags=tags or {}, stage=stage,
                 path=f"azureml://registries/azureml/models/{name}/versions/{version}",
                 system_metadata=system_metadata)


def clock_at(moment: datetime) -> Any:
    """A clock that always reads `moment`."""
    return lambda: moment
