"""Local serving with several endpoints live: one shared server per base model against a process each.

One LoRA fine-tune of the base model (SmolLM2-135M-Instruct unless --base-model names another directory or
`tiny-random`) is registered as the local trainer registers it: merged weights as the model, its adapter and
tokenizer beside it in the run (the adapter's weights are random, so it really changes the answers). Then,
side by side in one run, for each way of serving:

- shared: LocalEndpoints as it serves now, every endpoint's deployment an adapter in one process per base;
- process each: `share_base_models=False`, every deployment a server process holding the merged model (how
  local serving worked before);

the same model is deployed to 1, then 2, then 5 endpoints (each deployment loads its own copy of the
adapter), and after each step the resident memory of the serving side is summed over its processes (the
model servers and the endpoints' routers, also shown apart: a router per endpoint is the same either way):
RSS, and PSS (which counts pages shared between processes once).
Tokens/s is measured through the endpoints' URLs (the routers, OpenAI route, greedy): endpoint 1 alone with
one endpoint live, then the 5 endpoints called in turn with 5 live.

    python bench/engine/serve_shared.py [--requests 10] [--max-new-tokens 32] [--base-model DIR|tiny-random]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PROMPTS = ["What is a good backup rule?", "How do I reset my password?", "Summarise our refund policy.",
           "Which plan suits a team of five?", "Why is my invoice higher this month?"]
STEPS = (1, 2, 5)


def register(model_dir: str, data_dir: Path) -> Any:
    """Register a LoRA fine-tune of `model_dir` with random adapter weights, as a job logs one."""
    import mlflow
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shared.platforms.local import mlflow_store
    from shared.platforms.port import ModelRef

    client = mlflow_store.use(data_dir)
    experiment = mlflow_store.ensure_experiment(client, data_dir, "bench-serve-shared")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model: Any = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                                LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                           task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.01)
    adapter_dir = data_dir / "adapter"
    model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.log_artifacts(str(adapter_dir), "adapter")
        logged = mlflow.transformers.log_model({"model": model.merge_and_unload(), "tokenizer": tokenizer},
                                               name="model", task="llm/v1/chat",
                                               registered_model_name="bench-shared",
                                               pip_requirements=["torch", "transformers"])
    return ModelRef("bench-shared", str(logged.registered_model_version))


def serving_pids(endpoints: Any, names: list[str]) -> tuple[set[int], set[int]]:
    """The processes serving these endpoints: (model servers, shared ones once; routers)."""
    from shared.platforms.local.endpoint_files import EndpointFiles, read_state

    servers: set[int] = set()
    routers: set[int] = set()
    for name in names:
        state = read_state(EndpointFiles(endpoints._root / name))
        assert state is not None
        servers.update(entry.pid for entry in state.deployments.values() if entry.pid)
        if state.router_pid:
            routers.add(state.router_pid)
    return servers, routers


def memory_mb(pids: set[int]) -> dict[str, float]:
    """Summed RSS and PSS of `pids`, in MB (from /proc/PID/smaps_rollup)."""
    totals = {"rss_mb": 0.0, "pss_mb": 0.0}
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Rss", "Pss"):
                totals[f"{key.lower()}_mb"] += int(value.split()[0]) / 1024
    return {k: round(v, 1) for k, v in totals.items()}


def tokens_per_s(endpoints: Any, names: list[str], requests: int, max_new_tokens: int) -> float:
    """Greedy answers through the endpoints' URLs, the endpoints called in turn; completion tokens/s."""
    clients = []
    for name in names:
        info = endpoints.get_endpoint(name)
        clients.append((f"{info.scoring_uri.removesuffix('/score')}/v1/chat/completions",
                        {"Authorization": f"Bearer {endpoints.get_key(name)}"}))
    tokens, spent = 0, 0.0
    with httpx.Client(timeout=300) as http:
        for index in range(requests + len(names)):
            url, headers = clients[index % len(clients)]
            body = {"messages": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
                    "max_tokens": max_new_tokens, "temperature": 0}
            started = time.perf_counter()
            answer = http.post(url, json=body, headers=headers)
            answer.raise_for_status()
            if index >= len(names):  # the first call of each endpoint is a warm-up
                spent += time.perf_counter() - started
                tokens += int(answer.json()["usage"]["completion_tokens"])
    return round(tokens / spent, 1)


def measure(shared: bool, model: Any, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from shared.platforms.local.endpoints import LocalEndpoints
    from tests.support import offline_settings

    endpoints = LocalEndpoints(offline_settings(data_dir),
                               ready_timeout_s=600, share_base_models=shared)
    prefix = "sh" if shared else "pr"
    live: list[str] = []
    result: dict[str, Any] = {"memory": {}}
    try:
        for count in STEPS:
            while len(live) < count:
                name = f"{prefix}-bench-{len(live) + 1}"
                endpoints.deploy(model, name, "blue", {})
                endpoints.set_traffic(name, {"blue": 100})
                live.append(name)
            if count == 1:
                result["tokens_per_s_alone"] = tokens_per_s(endpoints, live, args.requests,
                                                            args.max_new_tokens)
            time.sleep(1.0)  # let the servers settle after the last load
            servers, routers = serving_pids(endpoints, live)
            result["memory"][count] = {**memory_mb(servers | routers),
                                       "model_servers_rss_mb": memory_mb(servers)["rss_mb"],
                                       "routers_rss_mb": memory_mb(routers)["rss_mb"]}
            result.setdefault("processes", {})[count] = len(servers | routers)
        result["tokens_per_s_5_in_turn"] = tokens_per_s(endpoints, live, args.requests, args.max_new_tokens)
    finally:
        for name in live:
            endpoints.delete_endpoint(name)
        endpoints.stop_all()
    first, last = result["memory"][STEPS[0]], result["memory"][STEPS[-1]]
    extra = STEPS[-1] - STEPS[0]
    result["rss_mb_per_extra_endpoint"] = round((last["rss_mb"] - first["rss_mb"]) / extra, 1)
    result["pss_mb_per_extra_endpoint"] = round((last["pss_mb"] - first["pss_mb"]) / extra, 1)
    result["model_servers_rss_mb_per_extra_endpoint"] = round(
        (last["model_servers_rss_mb"] - first["model_servers_rss_mb"]) / extra, 1)
    result["tokens_per_s_ratio"] = round(result["tokens_per_s_5_in_turn"] / result["tokens_per_s_alone"], 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--base-model", default="",
                        help="a local model directory or tiny-random; empty: SmolLM2-135M-Instruct")
    args = parser.parse_args()

    from engine.models.loading import source
    from shared.platforms.local.base_model_names import label

    model_dir = source(args.base_model, ROOT / ".autopilot" / "models")
    with tempfile.TemporaryDirectory(prefix="bench-serve-shared-") as scratch:
        data_dir = Path(scratch)
        model = register(model_dir, data_dir)
        results = {"shared": measure(True, model, data_dir, args),
                   "process each": measure(False, model, data_dir, args)}
    print(f"base model {label(args.base_model)}; {args.requests} greedy requests of up to "
          f"{args.max_new_tokens} tokens per figure")
    print(f"{'serving':<14}{'endpoints':>10}{'processes':>10}{'RSS MB':>10}{'PSS MB':>10}"
          f"{'servers RSS':>12}{'routers RSS':>12}")
    for name, result in results.items():
        for count in STEPS:
            memory = result["memory"][count]
            print(f"{name:<14}{count:>10}{result['processes'][count]:>10}{memory['rss_mb']:>10.1f}"
                  f"{memory['pss_mb']:>10.1f}{memory['model_servers_rss_mb']:>12.1f}"
                  f"{memory['routers_rss_mb']:>12.1f}")
    for name, result in results.items():
        print(f"{name}: +{result['rss_mb_per_extra_endpoint']} MB RSS "
              f"(+{result['pss_mb_per_extra_endpoint']} MB PSS; model servers alone "
              f"+{result['model_servers_rss_mb_per_extra_endpoint']} MB RSS) per extra endpoint; "
              f"{result['tokens_per_s_alone']} tokens/s alone, "
              f"{result['tokens_per_s_5_in_turn']} with 5 live in turn ({result['tokens_per_s_ratio']}x)")
    print(json.dumps({"bench": "serve_shared", "base_model": label(args.base_model), **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
