"""The front door: what it adds to a request, and how long a model asleep takes to answer through it.

One run of the real app here (Azurite, the devhost serving the function app, the local engine): the
demo's data fine-tunes the base model (SmolLM2-135M-Instruct unless --base-model says otherwise; --max-steps
keeps the fine-tune short, which changes nothing the benchmark times: a fine-tune has its base model's size)
and goes live. Then, side by side, request by request in turn (A, B, C, A, B, C, ...), so load drifting on
the machine slows all alike:

- server: the deployment's own server (what the front door forwards to);
- endpoint: the endpoint's stable URL (its router, what a client calling the endpoint directly uses);
- front: the front door, /api/v1 on the devhost, with its key and its ledger.

Non-streamed: the whole answer of `--max-tokens` (default 1) tokens; streamed: time to the first content
event. p50 and p95 of each, and the front's added latency (front minus endpoint, and minus server). Without
the FastAPI extension (docs/azure.md) the front sends a stream whole once it is complete, so its streamed
"first token" is the whole answer's time.

Then the cold start: the sweep puts the model to sleep (its deployment deleted), and one `openai` client
request through the front door with `stream=True` wakes it; the time to its first token is the figure, with
the deployment's own share (from the run's timeline). `--cold-starts N` does it N times (the middle one is
the figure). The gate is the demo's (SMOKE_CONVERSATIONS and EVAL_GATE at their defaults), as a wake pays it.
`--requests 0` skips the latency part; `--gated-baseline` times, in turn
with each, a wake gated in full (the smoke test and the evaluation gate, as every wake was before a model that
passed its gate needed only a readiness request).

    python bench/front_door.py [--requests 60] [--max-tokens 1] [--base-model DIR|tiny-random] [--max-steps 6]
                               [--cold-starts 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTION = [{"role": "user", "content": "How long is the warranty?"}]


def timed_call(client: httpx.Client, base: str, key: str, body: dict[str, Any], stream: bool) -> float:
    """Seconds to the whole answer, or (stream) to the first event carrying text."""
    headers = {"Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    if not stream:
        answer = client.post(f"{base}/chat/completions", json=body, headers=headers)
        answer.raise_for_status()
        assert answer.json()["choices"], answer.text
        return time.perf_counter() - started
    with client.stream("POST", f"{base}/chat/completions", json={**body, "stream": True},
                       headers=headers) as answer:
        answer.raise_for_status()
        for line in answer.iter_lines():
            if line.startswith("data: {") and '"content":"' in line.replace(" ", "") \
                    and '"content":""' not in line.replace(" ", ""):
                return time.perf_counter() - started
    raise AssertionError("no text came back")


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(1000 * statistics.median(ordered), 2), "p95_ms": round(1000 * p95, 2)}


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def go_live(life: Any) -> Any:
    """Upload the demo's data as `make demo` does; the live run."""
    from demo.make_sample import MANIFEST, TEST, TRAIN
    from shared.staging import BlobRef

    settings = life.ctx.settings
    for path in (MANIFEST, TEST, TRAIN):
        kind = "application/json" if path.suffix == ".json" else "application/jsonl"
        life.ctx.staging.put(BlobRef(settings.incoming_container, path.name), path.read_bytes(), kind)

    def live() -> Any:
        runs = life.ledger.find(upload=f"{settings.incoming_container}/{TRAIN.name}")
        if runs and runs[0].state.value in ("rejected", "failed", "rolled_back", "canceled"):
            raise SystemExit(f"run {runs[0].run_id} ended {runs[0].state}: {runs[0].error}")
        return runs[0] if runs and runs[0].state.value == "live" else None

    return wait_for("the run to go live", live, 1800)


def added_latency(life: Any, front: str, front_key: str, args: argparse.Namespace) -> dict[str, Any]:
    """The three ways to one live deployment, in turn; p50/p95 of each, non-streamed and streamed."""
    from shared.platforms.endpoint_names import project_name
    from shared.platforms.local.endpoint_files import EndpointFiles, read_state

    settings = life.ctx.settings
    (run,) = [r for r in life.ledger.all() if r.state.value == "live"]
    state = read_state(EndpointFiles(settings.data_dir / "endpoints" / run.endpoint))
    assert state is not None
    access = life.platform.endpoint_access(run.endpoint)
    endpoint_key = access.key
    assert access.openai_base_url is not None  # the local engine's router serves /v1
    routes = {"server": (f"http://127.0.0.1:{state.deployments[run.deployment].port}/v1", endpoint_key),
              "endpoint": (access.openai_base_url, endpoint_key),
              "front": (front, front_key)}
    body = {"model": project_name(settings), "messages": QUESTION, "max_tokens": args.max_tokens,
            "temperature": 0}
    figures: dict[str, Any] = {}
    with httpx.Client(timeout=120) as client:
        for stream in (False, True):
            samples: dict[str, list[float]] = {name: [] for name in routes}
            for base, key in routes.values():  # one warm-up each (connections, caches)
                timed_call(client, base, key, body, stream)
            for _ in range(args.requests):
                for name, (base, key) in routes.items():
                    samples[name].append(timed_call(client, base, key, body, stream))
            mode = "ttft_streamed" if stream else "non_streamed"
            figures[mode] = {name: percentiles(values) for name, values in samples.items()}
            front_p, endpoint_p, server_p = (figures[mode][n] for n in ("front", "endpoint", "server"))
            figures[mode]["added_vs_endpoint_ms"] = {k: round(front_p[k] - endpoint_p[k], 2) for k in front_p}
            figures[mode]["added_vs_server_ms"] = {k: round(front_p[k] - server_p[k], 2) for k in front_p}
            # Request by request (each front request beside the endpoint request just before it): the model's
            # own time, which varies from request to request, cancels out better than between percentiles.
            paired = [f - e for f, e in zip(samples["front"], samples["endpoint"], strict=True)]
            figures[mode]["added_paired_median_ms"] = round(1000 * statistics.median(paired), 2)
    return figures


def cold_start(life: Any, front: str, front_key: str, *, gated: bool = False) -> dict[str, Any]:
    """Put the live model to sleep, then time one streamed request through the front door to its first
    token. `gated`: the run's gate figures are forgotten first, so its wake is gated in full as every wake was
    before a model that passed its gate was only checked for readiness (the baseline)."""
    import openai

    from shared.platforms.endpoint_names import project_name

    (run,) = [r for r in life.ledger.all() if r.state.value == "live"]
    report = life.on_sweep(life.ledger.now() + life.ctx.settings.idle_ttl + timedelta(minutes=1))
    assert report.deleted == [run.endpoint], report.summary()
    if gated:
        run = life.ledger.get(run.run_id)
        life.ledger.update(run, "bench: gate figures forgotten", eval_rouge_l=None, baseline_rouge_l=None)
    asleep = life.platform.get_endpoint(run.endpoint)
    assert asleep is not None and asleep.deployments == ()
    client = openai.OpenAI(base_url=front, api_key=front_key)
    asked = datetime.now(UTC)
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=project_name(life.ctx.settings), messages=QUESTION,  # type: ignore[arg-type]
        max_tokens=1, temperature=0, stream=True)
    first = None
    for chunk in stream:
        assert isinstance(chunk, openai.types.chat.ChatCompletionChunk)
        if chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
            break
    assert first is not None, "no token came back"
    woken = life.ledger.get(run.run_id)
    # The wake's own timeline, from the ledger: each step's entry since the request woke the run.
    woke_at = max(e["at"] for e in woken.history if e.get("note") == "woken by a request")
    timeline = [(round((datetime.fromisoformat(e["at"]) - asked).total_seconds(), 2),
                 e["state"] + (f" [{e['step']}]" if e.get("step") else ""), e.get("note", "")[:60])
                for e in woken.history if e["at"] >= woke_at]
    return {"seconds_to_first_token": round(first, 2), "wakes": woken.wakes,
            "timeline_s": [list(entry) for entry in timeline]}


def cold_starts(life: Any, front: str, front_key: str, args: argparse.Namespace) -> dict[str, Any]:
    """`--cold-starts` wakes (the middle one is the figure); with `--gated-baseline`, a fully gated wake
    before each, in turn, so load drifting on the machine slows both alike."""
    each, gated = [], []
    for _ in range(args.cold_starts):
        if args.gated_baseline:
            gated.append(cold_start(life, front, front_key, gated=True)["seconds_to_first_token"])
        each.append(cold_start(life, front, front_key))
    cold = {**sorted(each, key=lambda c: c["seconds_to_first_token"])[len(each) // 2],
            "each_s": [c["seconds_to_first_token"] for c in each]}
    if gated:
        cold["gated_baseline_s"] = {"median": round(statistics.median(gated), 2), "each_s": gated}
        cold["ratio_gated_to_ready_checked"] = round(statistics.median(gated) / statistics.median(
            cold["each_s"]), 2)
    return cold


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60, help="timed requests per route and mode")
    parser.add_argument("--max-tokens", type=int, default=1)
    parser.add_argument("--base-model", default="", help="a model directory or tiny-random; empty: SmolLM2")
    parser.add_argument("--max-steps", type=int, default=6, help="fine-tune steps (the size is the same)")
    parser.add_argument("--cold-starts", type=int, default=1, help="sleep and wake this many times")
    parser.add_argument("--gated-baseline", action="store_true",
                        help="before each wake, one gated in full (as before readiness-only wakes)")
    args = parser.parse_args()

    from devhost import azurite
    from engine.models.loading import prepare_default
    from shared.wiring import prepare_local_registry

    with tempfile.TemporaryDirectory(prefix="bench-front-") as scratch:
        data_dir = Path(scratch) / "data"
        # The base model prepared once for every benchmark (bench/engine/serve.py's too), not once per run.
        models = ROOT / ".autopilot" / "models"
        models.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir()
        (data_dir / "models").symlink_to(models, target_is_directory=True)
        if not args.base_model:
            prepare_default(data_dir)
        prepare_local_registry(data_dir)
        with azurite.running(Path(scratch) / "azurite", in_memory=True) as storage:
            os.environ.update({
                "AUTOPILOT_PLATFORM": "local", "AUTOPILOT_STORAGE": storage.connection_string,
                "AUTOPILOT_DATA_DIR": str(data_dir), "IDLE_TTL": "2h", "IDLE_SWEEP_SCHEDULE": "0 0 0 1 1 *",
                "DEPLOY_POLL_INTERVAL": "0.5s", "DEPLOY_POLL_MAX_INTERVAL": "1s",
                "FINETUNE_MAX_STEPS": str(args.max_steps),
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                **({"BASE_MODEL": args.base_model} if args.base_model else {})})
            from devhost.host import DevHost
            from function_app import app
            from functions.worker import lifecycle
            from shared.front import front_key

            life = lifecycle()
            try:
                with DevHost(app, poll_interval=0.2) as host:
                    go_live(life)
                    front, key = f"{host.base_url}/api/v1", front_key(life.ctx.settings)
                    latency = added_latency(life, front, key, args) if args.requests else {}
                    cold = cold_starts(life, front, key, args)
            finally:
                life.close()
    print_table(latency, cold)
    print(json.dumps({"benchmark": "front_door", "base_model": args.base_model or "SmolLM2-135M-Instruct",
                      "requests": args.requests, "max_tokens": args.max_tokens, "latency": latency,
                      "cold_start": cold}))
    return 0


def print_table(latency: dict[str, Any], cold: dict[str, Any]) -> None:
    print(f"\n{'mode':<16} {'route':<10} {'p50 ms':>8} {'p95 ms':>8}")
    for mode, figures in latency.items():
        for route in ("server", "endpoint", "front"):
            print(f"{mode:<16} {route:<10} {figures[route]['p50_ms']:>8.1f} {figures[route]['p95_ms']:>8.1f}")
        added = figures["added_vs_endpoint_ms"]
        print(f"{mode:<16} {'added':<10} {added['p50_ms']:>8.1f} {added['p95_ms']:>8.1f}  (front - endpoint; "
              f"paired median {figures['added_paired_median_ms']:.1f} ms)")
    print(f"\ncold start, asleep -> first token through the front door: {cold['seconds_to_first_token']} s "
          f"(the middle of {cold['each_s']}); the wake's steps (seconds since the request), one wake:")
    for at, what, note in cold["timeline_s"]:
        print(f"  {at:7.2f}  {what:<22} {note}")
    if "gated_baseline_s" in cold:
        baseline = cold["gated_baseline_s"]
        print(f"baseline, each wake gated in full: {baseline['median']} s (median of {baseline['each_s']}); "
              f"{cold['ratio_gated_to_ready_checked']}x the wake above")


if __name__ == "__main__":
    sys.exit(main())
