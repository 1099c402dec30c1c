"""A ready Azure world for adapter tests: AzureMLPlatform with the real SDK clients over the wire fake.

What the adapter sent is read back from the fake service (the REST bodies it received), not from SDK objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared.platforms.azureml import AzureMLPlatform
from shared.platforms.port import DeploymentStatus, EndpointInfo, ModelRef, NotFoundError
from shared.settings import Settings
from tests.fakes.wire.world import NOW, AzureWire, FakeCredential, MovableClock

A100_SKUS = ["Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_NC96ads_A100_v4"]


@dataclass
class World:
    settings: Settings
    platform: AzureMLPlatform
    wire: AzureWire
    clock: MovableClock

    def job(self, name: str) -> dict[str, Any]:
        """The job as the workspace holds it (its REST properties)."""
        return dict(self.wire.workspace.jobs[name]["properties"])

    def node_inputs(self, name: str) -> dict[str, Any]:
        """The fine-tune node's inputs as sent: literal values as strings, data and models as their URIs."""
        (node,) = self.job(name)["jobs"].values()
        return {k: v.get("value", v.get("uri")) for k, v in node["inputs"].items()}

    def later(self, **delta: float) -> None:
        self.clock.now += timedelta(**delta)

    def provision(self, model: ModelRef, endpoint: str, deployment: str,
                  tags: Mapping[str, str] | None = None) -> list[DeploymentStatus]:
        """Deploy as the deploy and poll steps do: begin the deployment, then read its state until it is
        final, beginning it again while it is not there yet (its endpoint was still being created). Every
        status seen, in order; the service works on each read, as it does on Azure between two polls."""
        seen = [self.platform.begin_deployment(model, endpoint, deployment, dict(tags or {}))]
        for _ in range(30):
            if seen[-1].final:
                return seen
            try:
                seen.append(self.platform.deployment_status(endpoint, deployment))
            except NotFoundError:
                seen.append(self.platform.begin_deployment(model, endpoint, deployment, dict(tags or {})))
        raise AssertionError(f"{endpoint}/{deployment} never reached a final state: {seen[-3:]}")

    def deployed(self, model: ModelRef, endpoint: str, deployment: str,
                 tags: Mapping[str, str] | None = None) -> EndpointInfo:
        """`provision` to Succeeded; the endpoint as it then stands."""
        final = self.provision(model, endpoint, deployment, tags)[-1]
        assert final.succeeded, final
        info = self.platform.get_endpoint(endpoint)
        assert info is not None
        return info


def make_platform(settings: Settings, wire: AzureWire) -> AzureMLPlatform:
    """The adapter as production builds it, with the fake's transport and a token of the app's identity."""
    return AzureMLPlatform(settings, credential=FakeCredential(), client_options=wire.client_options(),
                           clock=wire.clock, sleep=wire.transport.sleep)


def build_world(wire: AzureWire | None = None, **env: str) -> World:
    """Today's registry (Phi-4, archived Phi-3-mini-4k-instruct, chat_completion_pipeline 0.0.82), an empty
    workspace with the roles infra/ grants (or `wire`, built by the test), and the adapter over it."""
    wire = wire or AzureWire(clock=MovableClock(NOW))
    assert isinstance(wire.clock, MovableClock), "the world's tests move the clock"
    settings = Settings.from_env(wire.env(**env))
    return World(settings, make_platform(settings, wire), wire, wire.clock)
