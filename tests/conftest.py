"""Fixtures shared by every tier: a real Azurite on free loopback ports, settings pointing at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from devhost import azurite as azurite_proc
from shared.settings import Settings


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite_proc.Azurite]:
    """One in-memory Azurite for the whole test session."""
    location = tmp_path_factory.mktemp("azurite")
    with azurite_proc.running(location, in_memory=True, log=location / "azurite.log") as instance:
        yield instance


@pytest.fixture
def settings_env(azurite: azurite_proc.Azurite, tmp_path: Path,
                 request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for a test's own app instance: fresh containers/table names so tests don't collide."""
    suffix = "t" + format(abs(hash(request.node.nodeid)) % 10**8, "08d")
    return {
        "AUTOPILOT_STORAGE": azurite.connection_string,
        "AUTOPILOT_PLATFORM": "local",
        "AUTOPILOT_DATA_DIR": str(tmp_path / "data"),
        "INCOMING_CONTAINER": f"in{suffix}",
        "STAGED_CONTAINER": f"st{suffix}",
        "REJECTED_CONTAINER": f"rj{suffix}",
        "LEDGER_TABLE": f"runs{suffix}",
        "JOB_EVENT_QUEUE": f"ev{suffix}",
        # Plumbing tests fine-tune the tiny random model (seconds); tests of learning ask for SmolLM2.
        "BASE_MODEL": "tiny-random",
        "STEP_QUEUE": f"steps{suffix}",
        # The step queue's delays are Azurite's, in real time: poll a deployment every second or two.
        "DEPLOY_POLL_INTERVAL": "1s",
        "DEPLOY_POLL_MAX_INTERVAL": "2s",
    }


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct prepared from its wheel once per test session (~25 s), for tests that learn."""
    from shared.platforms.local import smollm2

    return smollm2.ensure_prepared(tmp_path_factory.mktemp("models"))


@pytest.fixture
def settings(settings_env: dict[str, str]) -> Settings:
    return Settings.from_env(settings_env)
