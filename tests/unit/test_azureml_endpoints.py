"""Registration and blue/green deployment at the wire: the real SDK, deployments begun and their state read
as the deploy and poll steps do (`World.provision`), long-running operations the service works on."""

from __future__ import annotations

import pytest

from shared.platforms.azureml import errors
from shared.platforms.port import (
    MANAGED_TAG,
    ModelRef,
    NotFoundError,
    PlatformError,
    Provisioning,
    TransientPlatformError,
)
from tests.fakes.azureml_world import NOW, World, build_world
from tests.fakes.wire.operations import POLLS_BEFORE_DONE
from tests.unit.test_azureml_submit import spec


def trained(world: World) -> ModelRef:
    world.platform.submit(spec())
    world.wire.workspace.finish_job("ft-run-1", "Completed")
    return world.platform.register("ft-run-1", "Phi-4/chats v1", {"autopilot-run-id": "run-1"},
                                   "Phi-4 on chats")


def test_register_makes_an_mlflow_model_from_the_jobs_output_once() -> None:
    world = build_world()
    ref = trained(world)
    assert ref == ModelRef("Phi-4-chats-v1", "ft-run-1")
    model = world.wire.workspace.models[(ref.name, ref.version)]["properties"]
    assert model["modelUri"] == "azureml://jobs/ft-run-1/outputs/trained_model"
    assert model["modelType"] == "mlflow_model" and model["jobName"] == "ft-run-1"
    assert model["tags"]["autopilot-job"] == "ft-run-1" and model["tags"]["autopilot-run-id"] == "run-1"
    assert model["tags"]["autopilot-base-model"].endswith("/models/Phi-4/versions/8")
    assert world.platform.register("ft-run-1", "Phi-4/chats v1", {}, "") == ref
    assert len(world.wire.workspace.models) == 1


def test_register_refuses_a_job_that_has_not_completed() -> None:
    world = build_world()
    world.platform.submit(spec())
    with pytest.raises(PlatformError, match="NotStarted"):
        world.platform.register("ft-run-1", "m", {}, "")
    assert world.wire.workspace.models == {}


def test_blue_green_deploy_score_switch_delete() -> None:
    world = build_world()
    ref = trained(world)
    polls = world.wire.operations.polls
    seen = world.provision(ref, "chats-ep", "blue", {"autopilot-run-id": "run-1"})
    assert seen[0].provisioning == Provisioning.CREATING and seen[-1].succeeded
    assert world.wire.operations.polls == polls  # begun, then the resources read: no poller on the LROs
    info = world.platform.get_endpoint("chats-ep")
    assert info is not None
    endpoint = world.wire.endpoints.endpoints["chats-ep"]
    assert endpoint["properties"]["authMode"].lower() == "key" and endpoint["tags"][MANAGED_TAG] == "true"
    blue = world.wire.endpoints.deployments[("chats-ep", "blue")]["properties"]
    assert blue["provisioningState"] == "Succeeded" and blue["instanceType"] == "Standard_NC24ads_A100_v4"
    assert blue["livenessProbe"]["initialDelay"] == "PT10M"
    assert blue["requestSettings"]["requestTimeout"] == "PT1M30S"
    assert blue["model"] == world.wire.workspace.models[(ref.name, ref.version)]["id"]
    assert info.traffic.get("blue", 0) == 0 and info.deployments == ("blue",) and info.created_at == NOW
    assert info.last_deployed_at == NOW and info.scoring_uri
    world.platform.set_traffic("chats-ep", {"blue": 100})
    info = world.deployed(ref, "chats-ep", "green")
    assert info.traffic == {"blue": 100, "green": 0} and info.deployments == ("blue", "green")
    assert world.platform.score("chats-ep", {"input_data": {}}, deployment="green") == {
        "output": "answer from green"}
    with pytest.raises(PlatformError, match="traffic"):
        world.platform.delete_deployment("chats-ep", "blue")  # Azure refuses while blue serves
    world.platform.set_traffic("chats-ep", {"blue": 0, "green": 100})
    world.platform.delete_deployment("chats-ep", "blue")
    world.platform.delete_deployment("chats-ep", "blue")  # being deleted (or missing) is fine
    assert world.wire.endpoints.deployments[("chats-ep", "blue")]["properties"]["provisioningState"] == \
        "Deleting"  # begun, not awaited
    settle(world)
    final = world.platform.get_endpoint("chats-ep")
    assert final is not None and final.traffic == {"green": 100} and final.deployments == ("green",)
    assert [t for _, t in world.wire.endpoints.traffic_history] == [{}, {"blue": 100}, {"green": 100}]
    world.platform.delete_endpoint("chats-ep")
    world.platform.delete_endpoint("chats-ep")
    settle(world)
    assert world.platform.get_endpoint("chats-ep") is None


def settle(world: World) -> None:
    """The service finishes what was begun, whether or not anyone polls it."""
    for _ in range(POLLS_BEFORE_DONE + 1):
        world.wire.operations.work()


def test_scoring_by_name_does_not_stick_to_later_requests() -> None:
    # azure-ai-ml's invoke() keeps the deployment header of one call for every later call in the process.
    world = build_world()
    ref = trained(world)
    world.deployed(ref, "chats-ep", "blue")
    world.platform.set_traffic("chats-ep", {"blue": 100})
    world.deployed(ref, "chats-ep", "green")
    answer = world.platform.score("chats-ep", {"input_data": {}}, deployment="green")
    assert answer["output"] == "answer from green"
    assert world.platform.score("chats-ep", {"input_data": {}})["output"] == "answer from blue"  # by traffic
    assert [s.deployment for s in world.wire.scoring.scored] == ["green", "blue"]


def test_deploying_the_same_model_again_changes_nothing() -> None:
    world = build_world()
    ref = trained(world)
    world.deployed(ref, "chats-ep", "blue")
    again = world.platform.begin_deployment(ref, "chats-ep", "blue", {})
    assert again.succeeded and world.wire.endpoints.created_deployments == [("chats-ep", "blue")]


def test_deploying_an_unregistered_model_is_not_found_and_creates_nothing() -> None:
    world = build_world()
    with pytest.raises(NotFoundError):
        world.platform.begin_deployment(ModelRef("nope", "1"), "chats-ep", "blue", {})
    assert world.wire.endpoints.endpoints == {}


def test_inference_size_outside_the_allow_list_is_refused_before_creating_anything() -> None:
    world = build_world(AZUREML_INSTANCE_TYPE_INFERENCE="Standard_D4s_v3")
    ref = trained(world)
    with pytest.raises(errors.ComputeNotAllowed, match="AZUREML_INSTANCE_TYPE_INFERENCE"):
        world.platform.begin_deployment(ref, "chats-ep", "blue", {})
    assert world.wire.endpoints.endpoints == {}


def test_traffic_must_sum_to_100_and_names_must_suit_azure() -> None:
    world = build_world()
    ref = trained(world)
    world.deployed(ref, "chats-ep", "blue")
    with pytest.raises(PlatformError, match="100"):
        world.platform.set_traffic("chats-ep", {"blue": 50})
    with pytest.raises(PlatformError, match="not valid"):
        world.platform.begin_deployment(ref, "chats_ep", "blue", {})


def test_an_endpoint_name_taken_in_the_region_is_a_clear_error() -> None:
    world = build_world()
    ref = trained(world)
    world.wire.endpoints.taken_in_region.add("chats-ep")  # someone else's, in another subscription
    with pytest.raises(errors.EndpointNameTaken, match="ENDPOINT_NAME"):
        world.platform.begin_deployment(ref, "chats-ep", "blue", {})


def test_list_endpoints_reads_ours_with_deployments() -> None:
    world = build_world()
    world.deployed(trained(world), "chats-ep", "blue")
    (info,) = world.platform.list_endpoints()
    assert info.name == "chats-ep" and info.deployments == ("blue",) and info.scoring_uri


def test_a_deployment_that_fails_to_provision_reads_failed_and_stays_failed() -> None:
    world = build_world()
    ref = trained(world)
    world.wire.endpoints.fail_next_deployment = ("ResourceNotReady", "liveness probe failed: container "
                                                 "did not start")
    final = world.provision(ref, "chats-ep", "blue")[-1]
    assert final.provisioning == Provisioning.FAILED
    failed = world.wire.endpoints.deployments[("chats-ep", "blue")]["properties"]["provisioningState"]
    assert failed == "Failed"
    with pytest.raises(PlatformError):  # a failed deployment cannot take traffic
        world.platform.set_traffic("chats-ep", {"blue": 100})


@pytest.mark.parametrize(("code", "message", "kind", "words"), [
    ("OutOfQuota", "not enough quota for Standard_NC24ads_A100_v4", errors.OutOfQuota, "quota"),
    ("EndpointQuotaExceeded", "Endpoint quota reached: maximum number of endpoints",
     errors.EndpointQuotaReached,
     "endpoint limit"),
    ("ResourceNotReady", "liveness probe failed: container did not start", errors.DeploymentNotReady,
     "liveness"),
    ("OutOfCapacity", "OutOfCapacity for the SKU", errors.CapacityUnavailable, "capacity"),
])
def test_a_deployment_azure_refuses_is_our_error_naming_the_cause(code: str, message: str, kind: type,
                                                                  words: str) -> None:
    world = build_world()
    ref = trained(world)
    world.wire.endpoints.refuse_next_deployment = (code, message)
    with pytest.raises(kind, match=words) as caught:
        world.provision(ref, "chats-ep", "blue")
    assert getattr(caught.value, "transient", None) == issubclass(kind, TransientPlatformError)
    assert ("chats-ep", "blue") not in world.wire.endpoints.deployments
