"""`make demo`: the whole lifecycle on the embedded default, through the real function app.

Starts Azurite and the devhost, drops the sample chat file into the incoming container, waits for the run to
go live, scores the endpoint with the seed's payload through the platform port (the local engine POSTs it to
the endpoint's scoring URI with its key),
waits for the idle sweep to tear the endpoint down, stops everything it started, prints a timeline and, as
its last line, one JSON summary. Exit status 0 only if every stage happened.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.lifecycle import Lifecycle

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).with_name("sample_chat.jsonl")
DEMO_ENV = {
    "AUTOPILOT_PLATFORM": "local",
    "IDLE_TTL": "15s",  # short, so the demo sees the teardown; the default is 2h
    "IDLE_SWEEP_SCHEDULE": "*/5 * * * * *",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
FAILED_STATES = {"rejected", "duplicate", "failed", "canceled", "rolled_back"}


class DemoFailed(Exception):
    pass


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise DemoFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def run_demo(data_dir: Path) -> dict[str, Any]:
    """Everything between starting Azurite and stopping it; returns the summary."""
    from devhost import azurite

    marks: list[tuple[str, datetime]] = []
    with azurite.running(data_dir / "azurite", log=data_dir / "azurite.log") as storage:
        os.environ.update({**DEMO_ENV, "AUTOPILOT_STORAGE": storage.connection_string,
                           "AUTOPILOT_DATA_DIR": str(data_dir)})
        from devhost.host import DevHost
        from function_app import app
        from functions.worker import lifecycle

        life = lifecycle()
        try:
            with DevHost(app) as host:
                print(f"devhost on {host.base_url}; Azurite blob port {storage.blob_port}", flush=True)
                return drive(life, marks)
        finally:
            life.close()  # the local engine's endpoint servers


def drive(life: Lifecycle, marks: list[tuple[str, datetime]]) -> dict[str, Any]:
    from shared.lifecycle.gate import reply_text, seed_payload
    from shared.staging import BlobRef

    settings = life.ctx.settings
    life.ctx.staging.put(BlobRef(settings.incoming_container, SAMPLE.name), SAMPLE.read_bytes(),
                         "application/jsonl")
    marks.append(("uploaded", life.ledger.now()))
    print(f"uploaded {SAMPLE.name} to {settings.incoming_container}/", flush=True)

    def current() -> Any:
        runs = life.ledger.find(upload=f"{settings.incoming_container}/{SAMPLE.name}")
        if runs and runs[0].state.value in FAILED_STATES:
            raise DemoFailed(f"run {runs[0].run_id} ended {runs[0].state}: {runs[0].error}")
        return runs[0] if runs else None

    run = wait_for("the run to go live", lambda: (r := current()) and r.state.value == "live" and r, 300)
    question = [{"role": "user", "content": "How should I brew green tea?"}]
    # Greedy: the tiny model's next-token distribution stays nearly flat, so sampling reads as noise while
    # its top choice is what it learned.
    reply = reply_text(life.platform.score(run.endpoint, seed_payload(question, 24, greedy=True)))
    marks.append(("scored", life.ledger.now()))
    print(f"scored {run.endpoint}: {reply!r}", flush=True)

    down = wait_for("the idle sweep to tear the endpoint down",
                    lambda: (r := life.ledger.get(run.run_id)) and r.state.value == "torn_down" and r, 120)
    deleted = life.platform.get_endpoint(run.endpoint) is None
    job = life.platform.job_status(run.job_name)
    print_timeline(down, marks)
    return {
        "run_id": run.run_id,
        "dataset": {"rows": run.rows, "train_rows": run.train_rows, "test_rows": run.test_rows},
        "job": {"id": run.job_name, "status": job.status},
        "model": {"name": run.model_name, "version": run.model_version},
        "endpoint": {"name": run.endpoint, "scored": bool(reply), "reply": reply},
        "teardown": {"deleted": deleted},
    }


def print_timeline(run: Any, marks: list[tuple[str, datetime]]) -> None:
    events = sorted([(datetime.fromisoformat(h["at"]), h["state"], h.get("note", "")) for h in run.history]
                    + [(at, name, "") for name, at in marks])
    start = events[0][0]
    print("\ntimeline (seconds since upload):")
    previous = start
    for at, name, note in events:
        print(f"  {(at - start).total_seconds():7.1f}s  (+{(at - previous).total_seconds():5.1f}s)  "
              f"{name:<12} {note}")
        previous = at


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("azure", "httpx", "urllib3", "mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    data_dir = ROOT / ".autopilot" / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    started = time.monotonic()
    try:
        summary = run_demo(data_dir)
    except DemoFailed as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    print(f"\ndemo finished in {time.monotonic() - started:.1f} s; data under {data_dir}")
    print(json.dumps(summary))
    done = (summary["job"]["status"] == "Completed", summary["endpoint"]["scored"],
            summary["teardown"]["deleted"])
    return 0 if all(done) else 1


if __name__ == "__main__":
    sys.exit(main())
