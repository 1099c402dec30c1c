"""Why a deployment failed on Azure: the error of the operation that provisioned it, read once it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.platforms.azureml.failure import failure_reason
from shared.platforms.port import Provisioning
from tests.fakes.azureml_world import build_world
from tests.unit.test_azureml_endpoints import trained


def test_a_deployment_that_fails_while_provisioning_says_azures_code_and_message() -> None:
    world = build_world()
    ref = trained(world)
    world.wire.endpoints.fail_next_deployment = ("ResourceNotReady", "liveness probe failed")
    final = world.provision(ref, "chats-ep", "blue", {})[-1]
    assert final.provisioning == Provisioning.FAILED
    assert final.error == "ResourceNotReady: liveness probe failed"
    status_reads = [r for r in world.wire.transport.requests if "mfeOperationsStatus" in r.path]
    assert len(status_reads) == 1  # read once, when the deployment read Failed; never polled before


def test_a_deployment_that_failed_without_an_operation_error_says_where_its_log_is() -> None:
    world = build_world()
    ref = trained(world)
    world.deployed(ref, "chats-ep", "blue", {})
    world.wire.endpoints.kill("chats-ep", "blue")  # its container died after it had succeeded
    status = world.platform.deployment_status("chats-ep", "blue")
    assert status.provisioning == Provisioning.FAILED
    assert status.error and "az ml online-deployment get-logs -e chats-ep -n blue" in status.error


@dataclass
class Deployment:
    uri: str
    name: str = "blue"
    properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.properties["AzureAsyncOperationUri"] = self.uri


class NoCalls:
    """An ARM client that must not be called: the app's ARM token goes to ARM's own host only."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send_request(self, request: Any) -> Any:
        self.sent.append(request)
        raise AssertionError(f"called {request.url}")


def test_an_operation_address_off_arms_host_is_never_called() -> None:
    for uri in ("https://attacker.example/mfeOperationsStatus/x", "http://management.azure.com/x",
                "https://management.azure.com.attacker.example/x", "", "not a url"):
        arm = NoCalls()
        assert failure_reason(arm, Deployment(uri)) is None and arm.sent == [], uri
