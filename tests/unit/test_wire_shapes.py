"""The wire fake answers in Azure's shape: every field of every answer it served in a whole run of the adapter
is a field of the service's own example of that answer (`tests/fakes/wire/examples/`), so the SDKs parse
nothing Azure would not send."""

from __future__ import annotations

import re

import pytest

from tests.fakes.azureml_world import build_world
from tests.fakes.wire.examples import example, unknown_keys
from tests.unit.test_azure_permissions import exercise
from tests.unit.test_azureml_submit import spec

# The example each answered path (method, path ending) is an instance of; a list answers `{"value": [...]}`.
KINDS: tuple[tuple[str, str, str, bool], ...] = (
    ("GET", r"/registries/[^/]+/discovery", "registry_discovery", False),
    ("GET", r"/workspaces/[^/]+", "workspace", False),
    ("(PUT|GET)", r"/workspaces/[^/]+/jobs/[^/]+", "pipeline_job", False),
    ("(PUT|GET)", r"/workspaces/[^/]+/models/[^/]+/versions/[^/]+", "model_version", False),
    ("GET", r"/registries/[^/]+/models/[^/]+/versions/[^/]+", "registry_model_version", False),
    ("GET", r"/registries/[^/]+/models/[^/]+/versions", "registry_model_version", True),
    ("GET", r"/registries/[^/]+/components/[^/]+/versions", "registry_component_version", True),
    ("(PUT|GET)", r"/onlineEndpoints/[^/]+", "online_endpoint", False),
    ("GET", r"/onlineEndpoints", "online_endpoint", True),
    ("(PUT|GET)", r"/onlineEndpoints/[^/]+/deployments/[^/]+", "online_deployment", False),
    ("GET", r"/onlineEndpoints/[^/]+/deployments", "online_deployment", True),
    ("POST", r"/onlineEndpoints/[^/]+/listKeys", "endpoint_keys", False),
    ("GET", r"/mfeOperationsStatus/[^/]+", "operation_status", False),
    ("POST", r"/metrics:getBatch", "metrics_batch", False),
    ("GET", r"/workspaces/[^/]+/computes/[^/]+", "compute_amlcompute", False),
    ("GET", r"/api/2\.0/mlflow/runs/get", "mlflow_run", False),
    ("POST", r"/api/2\.0/mlflow/runs/search", "mlflow_runs_search", False),
    ("GET", r"/api/2\.0/mlflow/metrics/get-history", "mlflow_metric_history", False),
)

# Fields of the REST schema that an example happens to leave out (the `Compute` definition of
# specification/machinelearningservices/.../mfe.json has these; the AmlCompute example shows fewer).
SCHEMA_ONLY = {"compute_amlcompute": {"properties.computeLocation", "properties.isAttachedCompute",
                                      "properties.disableLocalAuth", "systemData"}}


def _kind(method: str, path: str) -> tuple[str, bool] | None:
    for methods, ending, name, listed in KINDS:
        if re.fullmatch(methods, method) and re.search(ending + "$", path):
            return name, listed
    return None


def test_every_answer_has_only_fields_of_azures_example() -> None:
    world = build_world()
    exercise(world)
    cluster = build_world(AZUREML_COMPUTE="gpu-cluster")
    cluster.wire.workspace.add_cluster("gpu-cluster", "Standard_NC24ads_A100_v4")
    cluster.platform.submit(spec())
    checked, extra = set(), []
    for w in (world, cluster):
        for request, reply in w.wire.transport.answered:
            kind = _kind(request.method, request.path)
            if reply.status >= 300 or reply.body is None or kind is None:
                continue
            name, listed = kind
            body, shape = (reply.body["value"], [example(name)]) if listed else (reply.body, example(name))
            extra += [f"{request.method} {request.path}: {key}" for key in unknown_keys(body, shape)
                      if key not in SCHEMA_ONLY.get(name, ())]
            checked.add(name)
    assert extra == []
    # No operation's status is read: the adapter begins long-running operations and reads the resources
    # (test_azureml_begun), so an `operation_status` answer is checked only if one is ever served.
    assert checked >= {"workspace", "pipeline_job", "model_version", "registry_model_version",
                       "registry_component_version", "online_endpoint", "online_deployment", "endpoint_keys",
                       "metrics_batch", "registry_discovery", "compute_amlcompute",
                       "mlflow_run", "mlflow_runs_search", "mlflow_metric_history"}


@pytest.mark.parametrize("answer", [{"id": "x", "made_up": 1}, {"properties": {"notAField": True}}])
def test_a_field_the_example_lacks_is_found(answer: dict[str, object]) -> None:
    assert unknown_keys(answer, example("online_endpoint"))
