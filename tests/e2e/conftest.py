"""The end-to-end tier: the real function app driven through the devhost's routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost.host import DevHost


@pytest.fixture
def host(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[DevHost]:
    """The devhost over function_app.py, with a short idle TTL; timers off (tests fire the sweep)."""
    for key, value in {**settings_env, "IDLE_TTL": "1s", "FINETUNE_LOGGING_STEPS": "1",
                       "IDLE_SWEEP_SCHEDULE": "0 0 0 1 1 *"}.items():
        monkeypatch.setenv(key, value)  # the functions read their settings from the environment
    from function_app import app
    from functions.worker import lifecycle

    lifecycle.cache_clear()
    devhost = DevHost(app, timers=False, poll_interval=0.3).start()
    try:
        yield devhost
    finally:
        devhost.stop()
        lifecycle().close()  # the local engine's endpoint servers
        lifecycle.cache_clear()
