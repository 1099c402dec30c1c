"""Registration and blue/green deployment on the in-memory workspace, asserted on the SDK's real entities."""

from __future__ import annotations

import pytest
from azure.ai.ml.constants import AssetTypes
from azure.core.exceptions import ClientAuthenticationError

from shared.platforms.azureml import errors
from shared.platforms.port import MANAGED_TAG, ModelRef, PlatformError, TransientPlatformError
from tests.fakes._common import user_error
from tests.fakes.azureml_world import NOW, World, build_world
from tests.unit.test_azureml_submit import spec


def trained(world: World) -> ModelRef:
    world.platform.submit(spec())
    world.ml.jobs.set_status("ft-run-1", "Completed")
    return world.platform.register("ft-run-1", "Phi-4/chats v1", {"autopilot-run-id": "run-1"},
                                   "Phi-4 on chats")


def test_register_makes_an_mlflow_model_from_the_jobs_output_once() -> None:
    world = build_world()
    ref = trained(world)
    assert ref == ModelRef("Phi-4-chats-v1", "ft-run-1")
    model = world.ml.models.get(ref.name, version=ref.version)
    assert model.tags is not None
    assert model.path == "azureml://jobs/ft-run-1/outputs/trained_model"
    assert model.type == AssetTypes.MLFLOW_MODEL
    assert model.tags["autopilot-job"] == "ft-run-1" and model.tags["autopilot-run-id"] == "run-1"
    assert model.tags["autopilot-base-model"].endswith("/models/Phi-4/versions/7")
    assert world.platform.register("ft-run-1", "Phi-4/chats v1", {}, "") == ref
    assert len(world.ml.models.list()) == 1


def test_register_refuses_a_job_that_has_not_completed() -> None:
    world = build_world()
    world.platform.submit(spec())
    with pytest.raises(PlatformError, match="NotStarted"):
        world.platform.register("ft-run-1", "m", {}, "")


def test_blue_green_deploy_score_switch_delete() -> None:
    world = build_world()
    ref = trained(world)
    info = world.platform.deploy(ref, "chats-ep", "blue", {"autopilot-run-id": "run-1"})
    endpoint = world.ml.online_endpoints.get("chats-ep")
    assert endpoint.tags is not None
    assert endpoint.auth_mode == "key" and endpoint.tags[MANAGED_TAG] == "true"
    (blue,) = world.ml.online_deployments.created
    assert blue.liveness_probe.initial_delay == 600 and blue.request_settings.request_timeout_ms == 90000
    assert blue.instance_type == "Standard_NC24ads_A100_v4" and blue.instance_count == 1
    assert blue.model == world.ml.models.get(ref.name, version=ref.version).id
    assert info.traffic == {} and info.deployments == ("blue",) and info.created_at == NOW
    assert info.last_deployed_at == NOW
    world.platform.set_traffic("chats-ep", {"blue": 100})
    info = world.platform.deploy(ref, "chats-ep", "green", {})
    assert info.traffic == {"blue": 100} and info.deployments == ("blue", "green")
    assert world.platform.score("chats-ep", {"input_data": {}}, deployment="green") == {
        "output": "answer from green"}
    assert world.ml.online_endpoints.requests[-1][:2] == ("chats-ep", "green")
    with pytest.raises(PlatformError, match="traffic"):
        world.platform.delete_deployment("chats-ep", "blue")  # Azure refuses while blue serves
    world.platform.set_traffic("chats-ep", {"blue": 0, "green": 100})
    world.platform.delete_deployment("chats-ep", "blue")
    world.platform.delete_deployment("chats-ep", "blue")  # missing is fine
    final = world.platform.get_endpoint("chats-ep")
    assert final is not None and final.traffic == {"green": 100} and final.deployments == ("green",)
    assert [t for _, t in world.ml.online_endpoints.traffic_history] == [{}, {"blue": 100}, {"green": 100}]
    world.platform.delete_endpoint("chats-ep")
    world.platform.delete_endpoint("chats-ep")
    assert world.platform.get_endpoint("chats-ep") is None


def test_deploying_the_same_model_again_changes_nothing() -> None:
    world = build_world()
    ref = trained(world)
    world.platform.deploy(ref, "chats-ep", "blue", {})
    world.platform.deploy(ref, "chats-ep", "blue", {})
    assert len(world.ml.online_deployments.created) == 1


def test_inference_size_outside_the_allow_list_is_refused_before_creating_anything() -> None:
    world = build_world(AZUREML_INSTANCE_TYPE_INFERENCE="Standard_NC6s_v3")
    ref = trained(world)
    with pytest.raises(errors.ComputeNotAllowed, match="AZUREML_INSTANCE_TYPE_INFERENCE"):
        world.platform.deploy(ref, "chats-ep", "blue", {})
    assert world.ml.online_endpoints.list() == []


def test_traffic_must_sum_to_100_and_names_must_suit_azure() -> None:
    world = build_world()
    ref = trained(world)
    world.platform.deploy(ref, "chats-ep", "blue", {})
    with pytest.raises(PlatformError, match="100"):
        world.platform.set_traffic("chats-ep", {"blue": 50})
    with pytest.raises(PlatformError, match="not valid"):
        world.platform.deploy(ref, "chats_ep", "blue", {})


def test_list_endpoints_reads_ours_with_deployments() -> None:
    world = build_world()
    world.platform.deploy(trained(world), "chats-ep", "blue", {})
    (info,) = world.platform.list_endpoints()
    assert info.name == "chats-ep" and info.deployments == ("blue",) and info.scoring_uri


@pytest.mark.parametrize(("failure", "kind", "words"), [
    (user_error("OutOfQuota: not enough quota for Standard_NC24ads_A100_v4", code="OutOfQuota"),
     errors.OutOfQuota, "quota"),
    (user_error("Endpoint quota reached: maximum number of endpoints", code="EndpointQuotaExceeded"),
     errors.EndpointQuotaReached, "endpoint limit"),
    (user_error("ResourceNotReady: liveness probe failed", code="ResourceNotReady"),
     errors.DeploymentNotReady, "liveness"),
    (ClientAuthenticationError("token expired"), errors.AuthFailed, "AzureML Data Scientist"),
    (user_error("busy", status=503, code="ServiceUnavailable"), errors.ServiceUnavailable, "retry"),
    (user_error("OutOfCapacity for the SKU", code="OutOfCapacity"), errors.CapacityUnavailable, "capacity"),
])
def test_deployment_failures_become_our_errors(failure: Exception, kind: type, words: str) -> None:
    world = build_world()
    ref = trained(world)
    world.ml.online_deployments.fail_next = failure
    with pytest.raises(kind, match=words) as caught:
        world.platform.deploy(ref, "chats-ep", "blue", {})
    assert getattr(caught.value, "transient", None) == issubclass(kind, TransientPlatformError)
