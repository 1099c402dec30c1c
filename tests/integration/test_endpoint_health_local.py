"""A dead local endpoint does not look live (issue 14, item 5), over the real local engine and Azurite:
kill -9 its server → the sweep marks the run unhealthy (one alert) → redeploy starts a new server → it
answers again."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.events import parse_run_event
from shared.lifecycle import Lifecycle
from shared.lifecycle.gate import seed_payload
from shared.ops.actions import redeploy
from shared.platforms.local.endpoint_state import EndpointFiles, read_state
from shared.runs import State
from shared.settings import Settings
from shared.wiring import build_lifecycle
from tests.integration.test_lifecycle_local import SAMPLE, next_terminal_event, upload
from tests.steps_host import run_steps

pytestmark = pytest.mark.integration
PAYLOAD = seed_payload([{"role": "user", "content": "Hi"}])


@pytest.fixture
def lifecycle(settings_env: dict[str, str]) -> Iterator[Lifecycle]:
    app = build_lifecycle(Settings.from_env(settings_env))  # default IDLE_TTL: nothing is idle here
    yield app
    app.close()


def server_pid(app: Lifecycle, endpoint: str, deployment: str) -> int:
    state = read_state(EndpointFiles(app.ctx.settings.data_dir / "endpoints" / endpoint))
    pid = state.deployments[deployment].pid if state else None
    assert pid is not None, state
    return pid


def alerts(app: Lifecycle) -> list[str]:
    path = app.ctx.settings.data_dir / "alerts.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line)["alert_class"] for line in lines]


def test_a_killed_endpoint_server_is_unhealthy_and_redeploy_restarts_it(lifecycle: Lifecycle) -> None:
    outcome = lifecycle.on_upload(upload(lifecycle, "sample_chat.jsonl", SAMPLE.read_bytes()))
    run_steps(lifecycle)
    lifecycle.on_job_event(parse_run_event(next_terminal_event(lifecycle)))
    run_steps(lifecycle)
    live = lifecycle.ledger.get(outcome.run_id)
    assert live is not None and live.state == State.LIVE, live
    assert lifecycle.platform.score(live.endpoint, PAYLOAD)["output"]

    pid = server_pid(lifecycle, live.endpoint, live.deployment)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/cmdline").exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    for _ in range(2):
        report = lifecycle.on_sweep()
        assert live.endpoint not in report.deleted
    down = lifecycle.ledger.get(live.run_id)
    assert down is not None and down.state == State.UNHEALTHY and "not running" in down.error, down
    assert alerts(lifecycle).count("endpoint.unhealthy") == 1  # two sweeps, one alert

    redeploy(lifecycle, live.run_id)  # before the fix: refused, the run "is live"
    run_steps(lifecycle)
    back = lifecycle.ledger.get(live.run_id)
    assert back is not None and back.state == State.LIVE, back
    assert server_pid(lifecycle, live.endpoint, live.deployment) != pid  # a new server process
    assert lifecycle.platform.score(live.endpoint, PAYLOAD)["output"]
    assert lifecycle.on_sweep().unhealthy == []
