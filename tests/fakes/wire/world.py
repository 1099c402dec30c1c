"""The fake Azure in one object: every service on one transport, RBAC at the door, today's registry.

`AzureWire` holds the transport and the services; `AzureMLPlatform` is built over it with the real clients
(`MLClient` for the workspace and the registry, `MetricsClient`), so serialization, polling and parsing are
the SDKs' own. The registry holds azureml-assets' Phi-4 (fine-tunable) and Phi-3-mini-4k-instruct (archived,
retired for fine-tuning on 2025-08-30), and chat_completion_pipeline 0.0.82.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo

from tests.fakes.wire.arm import Clock
from tests.fakes.wire.endpoints import Endpoints
from tests.fakes.wire.grants import infra_grants
from tests.fakes.wire.http import WireTransport
from tests.fakes.wire.ids import APP_PRINCIPAL, RESOURCE_GROUP, SUBSCRIPTION, TENANT, WORKSPACE
from tests.fakes.wire.monitor import Monitor
from tests.fakes.wire.operations import Operations
from tests.fakes.wire.rbac import Authorizer, Grant
from tests.fakes.wire.registry import Registry
from tests.fakes.wire.scoring import Scoring
from tests.fakes.wire.tracking import Tracking
from tests.fakes.wire.workspace import Workspace

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


class FakeCredential:
    """A TokenCredential of the app's identity: an unsigned JWT for the scope's audience (azure-ai-ml reads
    the `aud` of its https://ml.azure.com token before submitting a job). The fake authorizes by the grants,
    as ARM would, not by the token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(_jwt(scopes), int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(_jwt(scopes), int(time.time()) + 3600)


def _jwt(scopes: tuple[str, ...]) -> str:
    audience = scopes[0].removesuffix("/.default") if scopes else ""
    claims = {"aud": audience, "oid": APP_PRINCIPAL, "tid": TENANT, "exp": int(time.time()) + 3600}
    parts = [{"alg": "RS256", "typ": "JWT"}, claims]
    encoded = [base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode() for p in parts]
    return ".".join([*encoded, "c2lnbmF0dXJl"])


class MovableClock:
    """The fake's time (and the adapter's): fixed, moved on by tests."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class AzureWire:
    """Azure ML (workspace, registry, endpoints), Azure Monitor and ARM's RBAC behind one HttpTransport."""

    def __init__(self, clock: Clock | None = None, grants: Iterable[Grant] | None = None) -> None:
        self.clock = clock or MovableClock()
        self.operations = Operations(self.clock)
        self.registry = Registry(self.clock)
        self.workspace = Workspace(self.registry, self.clock)
        self.endpoints = Endpoints(self.workspace, self.operations, self.clock)
        self.scoring = Scoring(self.endpoints, self.clock)
        self.monitor = Monitor(self.scoring)
        self.tracking = Tracking(self.workspace)
        self.grants = list(infra_grants() if grants is None else grants)
        self.authorizer = Authorizer(self.grants, self.operations.origin_of)
        self.transport = WireTransport(self._authorize)
        for service in (self.operations, self.registry, self.workspace, self.endpoints, self.scoring,
                        self.monitor, self.tracking):
            service.mount(self.transport)
        self.registry.publish_model("Phi-4.yaml")
        self.registry.publish_model("phi-3-mini-4k-instruct.yaml")
        self.registry.publish_component("chat_completion_pipeline.yaml")

    def _authorize(self, request: Any) -> Any:
        return self.authorizer(request)

    def env(self, **extra: str) -> dict[str, str]:
        """Settings naming this workspace (storage is Azurite's when the test has one)."""
        return {"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true", "AUTOPILOT_PLATFORM": "azureml",
                "AZUREML_SUBSCRIPTION_ID": SUBSCRIPTION, "AZUREML_RESOURCE_GROUP": RESOURCE_GROUP,
                "AZUREML_WORKSPACE": WORKSPACE, **extra}

    def client_options(self) -> dict[str, Any]:
        """What the adapter passes to every Azure client: this transport, and no wait between LRO polls (the
        SDK's `polling_interval`; Azure ML sends no Retry-After, so the poller would wait 30 s each time)."""
        return {"transport": self.transport, "polling_interval": 0}
