"""Serving latency: our local endpoint against a plain transformers `pipeline("text-generation")`.

Both answer the same held-out demo prompts with the same model (the default base model, SmolLM2-135M-Instruct,
unless --base-model names another directory or `tiny-random`), greedy, up to the same number of new tokens,
after one warm-up request. Each contender runs in its own process, and they take turns prompt by prompt (A, B,
A, B, ...), so a machine whose load drifts during the run slows both alike:

- endpoint: the model registered in a scratch MLflow registry and deployed as a real local deployment (its
  own server process); a client process streams each answer through the OpenAI route (`stream: true`), as a
  caller would, so the figures include HTTP, auth, the chat template and server-sent events.
- pipeline: `pipeline("text-generation", model=DIR)` in a child process, given the chat messages, with a
  TextIteratorStreamer to see the first token.

Time to first token (TTFT) is from sending the request to the first piece of text; decode tokens/s counts the
tokens after the first over the time after the first. Prints a table, then one JSON line last.

    python bench/engine/serve.py [--max-new-tokens 48] [--prompts 8] [--base-model DIR|tiny-random]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def prompts(count: int) -> list[list[dict[str, str]]]:
    from demo.make_sample import held_out

    return [row["messages"][:-1] for row in held_out()[:count]]


def measure(stream: Any, started: float) -> dict[str, float]:
    """TTFT and decode rate from an iterator of (text, tokens so far) pieces."""
    first = last = None
    tokens = 0
    for _, seen in stream:
        last = time.perf_counter()
        first, tokens = first or last, seen
    assert first is not None and last is not None, "no token came back"
    decode = (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0
    return {"ttft_s": first - started, "total_s": last - started, "tokens": tokens, "decode_tps": decode}


def take_turns(pieces: Any, args: argparse.Namespace) -> None:
    """A contender's loop: warm up, then answer each prompt whose index arrives on stdin (one JSON line)."""
    asked = prompts(args.prompts)
    measure(pieces(asked[0]), time.perf_counter())
    print("ready", flush=True)
    for line in sys.stdin:
        print(json.dumps(measure(pieces(asked[int(line)]), time.perf_counter())), flush=True)


def endpoint_client(url: str, key: str, args: argparse.Namespace) -> None:
    """Stream each prompt's answer from the deployment's OpenAI route."""
    import openai

    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)

    def pieces(messages: list[dict[str, str]]) -> Any:
        stream = client.chat.completions.create(
            model="bench", messages=messages, max_tokens=args.max_new_tokens, temperature=0, stream=True,
            stream_options={"include_usage": True})  # type: ignore[call-overload]
        seen = 0
        for chunk in stream:
            if chunk.usage is not None:  # the last chunk: the exact count
                yield "", chunk.usage.completion_tokens
            elif chunk.choices and chunk.choices[0].delta.content:
                seen += 1  # a piece is at least one token; the usage chunk corrects the count
                yield chunk.choices[0].delta.content, seen

    take_turns(pieces, args)


def pipeline_child(model_dir: str, args: argparse.Namespace) -> None:
    """The plain pipeline, streamed through a TextIteratorStreamer on its own thread."""
    import threading

    from transformers import TextIteratorStreamer, pipeline

    generate = pipeline("text-generation", model=model_dir)
    tokenizer: Any = generate.tokenizer

    def pieces(messages: list[dict[str, str]]) -> Any:
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: result.update(out=generate(
            messages, max_new_tokens=args.max_new_tokens, do_sample=False, streamer=streamer)))
        worker.start()
        text = ""
        for piece in streamer:
            text += piece
            yield piece, len(tokenizer(text, add_special_tokens=False)["input_ids"])
        worker.join()

    take_turns(pieces, args)


def deploy(model_dir: str, data_dir: Path) -> tuple[Any, str, str]:
    """Register the model in a scratch registry and deploy it; (endpoints, OpenAI base URL, key)."""
    import mlflow
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shared.platforms.local import mlflow_store
    from shared.platforms.local.endpoints import LocalEndpoints
    from shared.platforms.port import ModelRef
    from tests.support import offline_settings

    client = mlflow_store.use(data_dir)
    experiment = mlflow_store.ensure_experiment(client, data_dir, "bench-serve")
    components = {"model": AutoModelForCausalLM.from_pretrained(model_dir),
                  "tokenizer": AutoTokenizer.from_pretrained(model_dir)}
    with mlflow.start_run(experiment_id=experiment):
        logged = mlflow.transformers.log_model(components, name="model", task="llm/v1/chat",
                                               registered_model_name="bench-model",
                                               pip_requirements=["torch", "transformers"])
    endpoints = LocalEndpoints(offline_settings(data_dir),
                               ready_timeout_s=300)
    endpoints.deploy(ModelRef("bench-model", str(logged.registered_model_version)), "bench", "blue", {})
    endpoints.set_traffic("bench", {"blue": 100})
    info = endpoints.get_endpoint("bench")
    assert info is not None and info.scoring_uri
    return endpoints, f"{info.scoring_uri.removesuffix('/score')}/v1", endpoints.get_key("bench")


def summary(name: str, runs: list[dict[str, float]]) -> dict[str, Any]:
    return {"contender": name, "prompts": len(runs),
            "ttft_ms_median": round(1000 * statistics.median(r["ttft_s"] for r in runs), 1),
            "decode_tokens_per_s": round(statistics.median(r["decode_tps"] for r in runs), 1),
            "tokens_per_s_end_to_end": round(sum(r["tokens"] for r in runs)
                                             / sum(r["total_s"] for r in runs), 1),
            "tokens": int(sum(r["tokens"] for r in runs))}


def _start(role: str, args: argparse.Namespace, *extra: str) -> subprocess.Popen[str]:
    """Start a contender's process and wait until it has warmed up."""
    command = [sys.executable, __file__, "--child", role, "--max-new-tokens", str(args.max_new_tokens),
               "--prompts", str(args.prompts), *extra]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                             cwd=ROOT)
    assert child.stdin is not None and child.stdout is not None
    for line in child.stdout:
        if line.strip() == "ready":
            return child
    raise SystemExit(f"{role} exited before it was ready (code {child.wait()})")


def _ask(child: subprocess.Popen[str], index: int) -> dict[str, float]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(f"{index}\n")
    child.stdin.flush()
    answer: dict[str, float] = json.loads(child.stdout.readline())
    return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--base-model", default="",
                        help="a local model directory or tiny-random; empty: SmolLM2-135M-Instruct")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "pipeline":
        pipeline_child(args.model, args)
        return 0
    if args.child == "endpoint":
        endpoint_client(args.url, os.environ.pop("BENCH_ENDPOINT_KEY"), args)
        return 0

    from engine.models.loading import source
    from shared.platforms.local.base_model_names import label

    model_dir = source(args.base_model, ROOT / ".autopilot" / "models")
    runs: dict[str, list[dict[str, float]]] = {"our endpoint (HTTP, streamed)": [],
                                               "transformers pipeline": []}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        endpoints, url, key = deploy(model_dir, Path(scratch))
        # The key reaches the client through its environment, never its command line.
        os.environ["BENCH_ENDPOINT_KEY"] = key
        contenders = [_start("endpoint", args, "--url", url)]
        del os.environ["BENCH_ENDPOINT_KEY"]
        contenders.append(_start("pipeline", args, "--model", model_dir))
        try:
            for index in range(args.prompts):
                for name, child in zip(runs, contenders, strict=True):
                    runs[name].append(_ask(child, index))
        finally:
            for child in contenders:
                child.kill()
                child.wait()
            endpoints.delete_endpoint("bench")
    results = [summary(name, measured) for name, measured in runs.items()]
    print(f"{'contender':<32} {'TTFT ms':>8} {'decode tok/s':>13} {'end-to-end tok/s':>17} {'tokens':>7}")
    for r in results:
        print(f"{r['contender']:<32} {r['ttft_ms_median']:>8.0f} {r['decode_tokens_per_s']:>13.1f} "
              f"{r['tokens_per_s_end_to_end']:>17.1f} {r['tokens']:>7}")
    ours, plain = results
    print(f"\nours vs pipeline: {plain['ttft_ms_median'] / ours['ttft_ms_median']:.2f}x faster first token, "
          f"{ours['tokens_per_s_end_to_end'] / plain['tokens_per_s_end_to_end']:.2f}x tokens/s end to end")
    print(json.dumps({"benchmark": "serve", "base_model": label(args.base_model),
                      "max_new_tokens": args.max_new_tokens, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
