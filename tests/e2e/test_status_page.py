"""The status page in a real browser after a real lifecycle run: live with its model, then torn down.

Headless Chromium (Debian's `chromium`) loads GET /api/status from the devhost, dumps the DOM and takes a
screenshot under artifacts/ (gitignored) for a person to look at. One lifecycle run, ~60-90 s here.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost.host import DevHost
from tests.e2e.support import SAMPLE, wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed; install it with "
                                                 "`apt-get update && apt-get install -y chromium`"),
]


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


def screenshot(url: str, tmp_path: Path, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / name
    target.unlink(missing_ok=True)
    chromium(url, tmp_path, f"--screenshot={target}")
    assert target.stat().st_size > 10_000, "the screenshot is (nearly) empty"
    print(f"\nstatus page screenshot: {target}")
    return target


def test_status_page_shows_the_run_live_then_torn_down(host: DevHost, tmp_path: Path) -> None:
    from functions.worker import lifecycle
    from shared.staging import BlobRef

    life = lifecycle()
    upload = BlobRef(life.ctx.settings.incoming_container, "chat.jsonl")
    life.ctx.staging.put(upload, SAMPLE.read_bytes())

    def live() -> Any:
        runs = life.ledger.find(upload=upload.path)
        assert not runs or runs[0].state.value not in ("failed", "rolled_back", "rejected"), runs[0]
        return runs[0] if runs and runs[0].state.value == "live" else None

    run = wait_until(live, 300)
    status_url = f"{host.base_url}/api/status"

    page = httpx.get(status_url, timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    dom = chromium(status_url, tmp_path, "--dump-dom").stdout
    for html in (page.text, dom):
        assert f'id="row-{run.run_id}"' in html
        row = html.split(f'id="row-{run.run_id}"', 1)[1].split("</tr>", 1)[0]
        assert 'data-state="live"' in row and f"{run.model_name}:{run.model_version}" in row
    assert "<script" not in page.text.lower() and "http://" not in page.text.split("<body>")[0]
    assert "train_loss" in page.text  # the job's figures, read from the platform
    screenshot(status_url, tmp_path, "status-live.png")

    time.sleep(3.5)
    fired = httpx.post(f"{host.base_url}/admin/functions/idle_sweep", json={"input": ""}, timeout=60)
    assert fired.status_code in (200, 202)
    wait_until(lambda: (r := life.ledger.get(run.run_id)) and r.state.value == "torn_down", 60)

    dom = chromium(status_url, tmp_path, "--dump-dom").stdout
    row = dom.split(f'id="row-{run.run_id}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-state="torn_down"' in row and "billed " in row and " since" in row  # billed, asleep since
    assert "No managed endpoint is running" in dom
    assert "endpoint.torn_down" in dom  # the teardown alert, in the recent alerts
    screenshot(status_url, tmp_path, "status-torn-down.png")

    # The operator's one step back: the model stayed registered, so redeploy brings the run live again.
    # It answers 202 at once; the devhost's queue trigger runs the deploy and poll steps; follow Location.
    again = httpx.post(f"{host.base_url}/api/runs/{run.run_id}/redeploy", timeout=30)
    assert again.status_code == 202 and again.json()["state"] == "deploying", again.text
    location = again.headers["location"]
    back = wait_until(lambda: (d := httpx.get(location, timeout=30).json())["state"] == "live" and d, 120)
    assert back["model"]["version"] == run.model_version
    assert life.platform.get_endpoint(run.endpoint) is not None
    refused = httpx.post(f"{host.base_url}/api/runs/{run.run_id}/retry", timeout=60)
    assert refused.status_code == 409 and "live" in refused.json()["error"]
