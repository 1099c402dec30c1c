"""A ready Azure world for adapter tests: AzureMLPlatform with the real SDK clients over the wire fake.

What the adapter sent is read back from the fake service (the REST bodies it received), not from SDK objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared.platforms.azureml import AzureMLPlatform
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
