"""End to end through the devhost's HTTP routes: the function app as the Functions host would drive it."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from devhost.host import DevHost
from tests.e2e.support import SAMPLE, wait_until

pytestmark = pytest.mark.e2e


def test_dropped_file_goes_live_and_is_torn_down_when_idle(host: DevHost) -> None:
    from functions.worker import lifecycle
    from shared.staging import BlobRef

    listed = httpx.get(f"{host.base_url}/admin/functions").json()
    assert {f["name"] for f in listed} >= {"ingest", "job_events", "idle_sweep"}

    life = lifecycle()
    upload = BlobRef(life.ctx.settings.incoming_container, "chat.jsonl")
    life.ctx.staging.put(upload, SAMPLE.read_bytes())  # the watcher turns this into BlobCreated

    def live() -> Any:
        runs = life.ledger.find(upload=upload.path)
        assert not runs or runs[0].state.value not in ("failed", "rolled_back", "rejected"), runs[0]
        return runs[0] if runs and runs[0].state.value == "live" else None

    run = wait_until(live, 300)
    states = [h["state"] for h in run.history]
    assert states[:3] == ["received", "validated", "submitted"] and states[-1] == "live"

    endpoint = life.platform.get_endpoint(run.endpoint)
    key = life.platform.endpoint_access(run.endpoint).key  # what a user's client gets from the port
    payload = {"input_data": {"input_string": [{"role": "user", "content": "hello"}],
                              "parameters": {"max_new_tokens": 8}}, "params": {}}
    assert httpx.post(endpoint.scoring_uri, json=payload, timeout=60).status_code == 401
    scored = httpx.post(endpoint.scoring_uri, json=payload, headers={"Authorization": f"Bearer {key}"},
                        timeout=60)
    assert scored.status_code == 200 and scored.json()["output"]

    time.sleep(3.5)
    fired = httpx.post(f"{host.base_url}/admin/functions/idle_sweep", json={"input": ""}, timeout=60)
    assert fired.status_code in (200, 202)
    down = wait_until(lambda: (r := life.ledger.get(run.run_id)) and r.state.value == "torn_down" and r, 60)
    assert down.model_version == run.model_version
    asleep = life.platform.get_endpoint(run.endpoint)  # the deployment went; the endpoint, URL and key stay
    assert asleep is not None and asleep.deployments == ()
