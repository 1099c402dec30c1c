"""End to end through the devhost's HTTP routes: the function app as the Functions host would drive it.

One real lifecycle run (~30 s here), checked at each stage from the outside: the functions the host lists,
the endpoint answering only with its key, the status page live then asleep, and the idle sweep's teardown.
Where headless Chromium is installed (`apt-get install -y chromium`; CI has it) the page is also loaded in
the browser, its DOM checked and screenshots kept under artifacts/ (gitignored).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost.host import DevHost
from tests.e2e.support import SAMPLE, wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.e2e


def chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with the flags a sandboxed CI machine needs; raises if it fails."""
    profile = tmp_path / f"chromium-{time.monotonic_ns()}"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", f"--user-data-dir={profile}",
               "--window-size=1400,1000", *extra, url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def page_as_shown(url: str, tmp_path: Path, screenshot: str) -> list[str]:
    """The status page's HTML as served, and as the browser built it (with a screenshot) where installed."""
    page = httpx.get(url, timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text.lower() and "http://" not in page.text.split("<body>")[0]
    if CHROMIUM is None:
        warnings.warn("headless Chromium is not installed: the status page is checked as served only",
                      stacklevel=2)
        return [page.text]
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / screenshot
    target.unlink(missing_ok=True)
    chromium(url, tmp_path, f"--screenshot={target}")
    assert target.stat().st_size > 10_000, "the screenshot is (nearly) empty"
    print(f"\nstatus page screenshot: {target}")
    return [page.text, chromium(url, tmp_path, "--dump-dom").stdout]


def row_of(html: str, run_id: str) -> str:
    assert f'id="row-{run_id}"' in html
    return html.split(f'id="row-{run_id}"', 1)[1].split("</tr>", 1)[0]


def test_a_dropped_file_goes_live_shows_on_the_page_and_sleeps_when_idle(
        host: DevHost, tmp_path: Path) -> None:
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

    # The endpoint answers its key only; the key is what a user's client gets from the port.
    endpoint = life.platform.get_endpoint(run.endpoint)
    key = life.platform.endpoint_access(run.endpoint).key
    payload = {"input_data": {"input_string": [{"role": "user", "content": "hello"}],
                              "parameters": {"max_new_tokens": 8}}, "params": {}}
    assert httpx.post(endpoint.scoring_uri, json=payload, timeout=60).status_code == 401
    scored = httpx.post(endpoint.scoring_uri, json=payload, headers={"Authorization": f"Bearer {key}"},
                        timeout=60)
    assert scored.status_code == 200 and scored.json()["output"]

    status_url = f"{host.base_url}/api/status"
    for html in page_as_shown(status_url, tmp_path, "status-live.png"):
        row = row_of(html, run.run_id)
        assert 'data-state="live"' in row and f"{run.model_name}:{run.model_version}" in row
        assert "train_loss" in html  # the job's figures, read from the platform

    time.sleep(1.5)  # past IDLE_TTL (1 s here) without a request
    fired = httpx.post(f"{host.base_url}/admin/functions/idle_sweep", json={"input": ""}, timeout=60)
    assert fired.status_code in (200, 202)
    down = wait_until(lambda: (r := life.ledger.get(run.run_id)) and r.state.value == "torn_down" and r, 60)
    assert down.model_version == run.model_version
    asleep = life.platform.get_endpoint(run.endpoint)  # the deployment went; the endpoint, URL and key stay
    assert asleep is not None and asleep.deployments == ()

    for html in page_as_shown(status_url, tmp_path, "status-torn-down.png"):
        row = row_of(html, run.run_id)
        assert 'data-state="torn_down"' in row and "billed " in row and " since" in row
        assert "No managed endpoint is running" in html
        assert "endpoint.torn_down" in html  # the teardown alert, in the recent alerts

    # Retrying it is refused: its job succeeded (bringing it back is a redeploy: the runs API's test and, on
    # the engine, the front door's wake in tests/integration/test_lifecycle_local.py).
    refused = httpx.post(f"{host.base_url}/api/runs/{run.run_id}/retry", timeout=60)
    assert refused.status_code == 409, refused.text
