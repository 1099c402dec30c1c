"""`make demo`: the whole lifecycle on the embedded default, through the real function app.

Prepares the default base model (SmolLM2-135M-Instruct, once per data dir), starts Azurite and the devhost,
drops the demo's manifest, held-out test file and training file into the incoming container, waits for the
run to go live, prints the evaluation report (base model vs fine-tuned on held-out prompts), scores the
endpoint with the seed's payload through the platform port (the local engine POSTs it to the endpoint's
scoring URI with its key), waits for the idle sweep to put the model to sleep (its deployment deleted, the
endpoint kept), then asks it again through the front door with the `openai` client, which wakes it (one
redeploy) and answers; stops everything it started, prints a timeline and, as its last line, one JSON
summary. Exit status 0 only if every stage happened and the fine-tune beat its base model.
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

from demo.make_sample import MANIFEST, TEST, TOPICS, TRAIN

if TYPE_CHECKING:
    from shared.lifecycle import Lifecycle

ROOT = Path(__file__).resolve().parent.parent
# The manifest goes first and the data last, so the run starts once, with everything there.
UPLOADS = (MANIFEST, TEST, TRAIN)
DEMO_ENV = {
    "AUTOPILOT_PLATFORM": "local",
    "IDLE_TTL": "15s",  # short, so the demo sees the teardown; the default is 2h
    "IDLE_SWEEP_SCHEDULE": "*/5 * * * * *",
    # The local endpoint loads its model in seconds, not Azure's 10-20 minutes: poll it every 1-3 s.
    "DEPLOY_POLL_INTERVAL": "1s",
    "DEPLOY_POLL_MAX_INTERVAL": "3s",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
FAILED_STATES = {"rejected", "duplicate", "failed", "canceled", "rolled_back"}
# A held-out paraphrase (sample_chat.test.jsonl), asked over HTTP once the model is live.
QUESTION = TOPICS["warranty"][1]


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
                return drive(life, marks, f"{host.base_url}/api/v1")
        finally:
            life.close()  # the local engine's endpoint servers


def drive(life: Lifecycle, marks: list[tuple[str, datetime]], front_url: str) -> dict[str, Any]:
    from shared.evaluation.render import text_table
    from shared.lifecycle.gate import reply_text, seed_payload
    from shared.staging import BlobRef

    settings = life.ctx.settings
    marks.append(("uploaded", life.ledger.now()))
    for path in UPLOADS:
        kind = "application/json" if path.suffix == ".json" else "application/jsonl"
        life.ctx.staging.put(BlobRef(settings.incoming_container, path.name), path.read_bytes(), kind)
    print(f"uploaded {', '.join(p.name for p in UPLOADS)} to {settings.incoming_container}/", flush=True)

    def current() -> Any:
        runs = life.ledger.find(upload=f"{settings.incoming_container}/{TRAIN.name}")
        if runs and runs[0].state.value in FAILED_STATES:
            raise DemoFailed(f"run {runs[0].run_id} ended {runs[0].state}: {runs[0].error}")
        return runs[0] if runs else None

    run = wait_for("the run to go live", lambda: (r := current()) and r.state.value == "live" and r, 600)
    marks.append(("live", life.ledger.now()))
    report = life.platform.training_record(run.job_name).evaluation
    if report is None:
        raise DemoFailed(f"job {run.job_name} wrote no evaluation report")
    print(f"\nevaluation on the held-out prompts (job {run.job_name}):\n{text_table(report)}\n", flush=True)
    question = [{"role": "user", "content": QUESTION}]
    reply = reply_text(life.platform.score(run.endpoint, seed_payload(question, 64, greedy=True)))
    marks.append(("scored", life.ledger.now()))
    print(f"scored {run.endpoint}: {QUESTION!r} -> {reply!r}", flush=True)

    wait_for("the idle sweep to put the model to sleep",
             lambda: (r := life.ledger.get(run.run_id)) and r.state.value == "torn_down" and r, 120)
    marks.append(("asleep", life.ledger.now()))
    asleep = life.platform.get_endpoint(run.endpoint)
    deleted = asleep is not None and asleep.deployments == ()  # what billed went; the endpoint stays
    wake = wake_through_front(life, front_url, question)
    marks.append(("answered", life.ledger.now()))
    woken = life.ledger.get(run.run_id) or run
    job = life.platform.job_status(run.job_name)
    print_timeline(woken, marks)
    return {
        "run_id": run.run_id,
        "dataset": {"rows": run.rows, "train_rows": run.train_rows, "test_rows": run.test_rows},
        "job": {"id": run.job_name, "status": job.status},
        "model": {"name": run.model_name, "version": run.model_version},
        "eval": eval_summary(report),
        "endpoint": {"name": run.endpoint, "scored": bool(reply), "reply": reply},
        "teardown": {"deleted": deleted, "endpoint_kept": asleep is not None},
        "wake": wake,
    }


def wake_through_front(life: Lifecycle, front_url: str, question: list[dict[str, str]]) -> dict[str, Any]:
    """Ask the asleep model through the front door, as any OpenAI client would: it wakes and answers."""
    import openai

    from shared.front import front_key
    from shared.platforms.endpoint_names import project_name

    client = openai.OpenAI(base_url=front_url, api_key=front_key(life.ctx.settings))
    started = time.monotonic()
    answer = client.chat.completions.create(
        model=project_name(life.ctx.settings), messages=question,  # type: ignore[arg-type]
        max_tokens=64, temperature=0)
    seconds = round(time.monotonic() - started, 1)
    text = answer.choices[0].message.content or ""
    print(f"woke {project_name(life.ctx.settings)} through the front door in {seconds} s: {text!r}",
          flush=True)
    return {"seconds": seconds, "answered": bool(text)}


def eval_summary(report: Any) -> dict[str, float | None]:
    """Base vs fine-tuned on the held-out prompts: loss (lower is better) and ROUGE-L (higher is better)."""
    base, tuned = report.score("base"), report.score("candidate")
    return {"base_loss": _round(base and base.loss), "tuned_loss": _round(tuned and tuned.loss),
            "base_rouge_l": _round(base and base.rouge_l), "tuned_rouge_l": _round(tuned and tuned.rouge_l)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def learned(summary: dict[str, Any]) -> bool:
    """Whether the fine-tune beat its base model on both figures."""
    figures = summary["eval"]
    if None in figures.values():
        return False
    return bool(figures["tuned_loss"] < figures["base_loss"]
                and figures["tuned_rouge_l"] > figures["base_rouge_l"])


def print_timeline(run: Any, marks: list[tuple[str, datetime]]) -> None:
    # A step's entry (a deployment's poll, say) shows under its state with the step's name.
    events = sorted([(datetime.fromisoformat(h["at"]), h["state"],
                      (f"[{h['step']}] " if h.get("step") else "") + h.get("note", "")) for h in run.history]
                    + [(at, name, "") for name, at in marks])
    start = events[0][0]
    print("\ntimeline (seconds since upload):")
    previous = start
    for at, name, note in events:
        print(f"  {(at - start).total_seconds():7.1f}s  (+{(at - previous).total_seconds():5.1f}s)  "
              f"{name:<12} {note}")
        previous = at


def fresh_start(data_dir: Path) -> None:
    """Remove the previous demo's state, but keep the prepared base model (the demo would only redo it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for entry in data_dir.iterdir():
        if entry.is_dir() and entry.name != "models":
            shutil.rmtree(entry)
        elif not entry.is_dir():
            entry.unlink()


def prepare_base_model(data_dir: Path) -> None:
    """Convert the default base model from its wheel once per data dir, and create the data dir's MLflow
    store, before the clock starts: set-up (like installing packages), not part of a run. The job would
    otherwise do both on first use."""
    from engine.models.loading import prepare_default
    from shared.wiring import prepare_local_registry

    started = time.monotonic()
    name, where = prepare_default(data_dir)
    print(f"base model {name} ready at {where} ({time.monotonic() - started:.1f} s)", flush=True)
    started = time.monotonic()
    print(f"MLflow store {prepare_local_registry(data_dir)} ready ({time.monotonic() - started:.1f} s)",
          flush=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("azure", "httpx", "urllib3", "mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    data_dir = ROOT / ".autopilot" / "demo"
    fresh_start(data_dir)
    started = time.monotonic()
    try:
        prepare_base_model(data_dir)
        summary = run_demo(data_dir)
    except DemoFailed as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    print(f"\ndemo finished in {time.monotonic() - started:.1f} s; data under {data_dir}")
    print(json.dumps(summary))
    done = (summary["job"]["status"] == "Completed", summary["endpoint"]["scored"],
            summary["teardown"]["deleted"], summary["wake"]["answered"], learned(summary))
    return 0 if all(done) else 1


if __name__ == "__main__":
    sys.exit(main())
