"""Local endpoints share one server per base model: LoRA fine-tunes are adapters in it, chosen per request.

Real server processes, a real MLflow registry and the tiny chat model; two LoRA fine-tunes are registered
as the local trainer registers them (merged weights as the model, the adapter and its tokenizer beside it in
the run), with different random adapter weights so their answers differ. One module-scoped data dir: each
test brings back the endpoints it needs (a shared server loads its base once, seconds on CPU).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.chat_model import ChatModel
from engine.models.tiny import ensure_tiny_base_model
from shared.platforms.local import mlflow_store, server_process
from shared.platforms.local.endpoint_files import DeploymentState, EndpointFiles, read_state
from shared.platforms.local.endpoints import LocalEndpoints
from shared.platforms.port import ModelRef, Provisioning
from tests.support import offline_settings

pytestmark = pytest.mark.integration

CONVERSATION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"input_data": {"input_string": CONVERSATION,
                         "parameters": {"do_sample": False, "max_new_tokens": 8}}}


def _log_fine_tune(data_dir: Path, name: str, seed: int, *, adapter: bool = True) -> tuple[ModelRef, Path]:
    """Register a LoRA fine-tune of the tiny model with random adapter weights, as a job logs one."""
    import mlflow
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    client = mlflow_store.use(data_dir)
    experiment = mlflow_store.ensure_experiment(client, data_dir, "shared-serving-tests")
    base = ensure_tiny_base_model(data_dir / "models")
    tokenizer = AutoTokenizer.from_pretrained(base)
    peft_model: Any = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                                     LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                task_type="CAUSAL_LM"))
    torch.manual_seed(seed)
    with torch.no_grad():  # lora_B starts at zero (a no-op): give each fine-tune weights of its own
        for parameter_name, parameter in peft_model.named_parameters():
            if "lora_B" in parameter_name:
                parameter.normal_(0, 0.5)
    adapter_dir = data_dir / f"adapter-{name}"
    peft_model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    merged = peft_model.merge_and_unload()
    with mlflow.start_run(experiment_id=experiment):
        if adapter:
            mlflow.log_artifacts(str(adapter_dir), "adapter")
        logged = mlflow.transformers.log_model({"model": merged, "tokenizer": tokenizer}, name="model",
                                               task="llm/v1/chat", registered_model_name=name,
                                               pip_requirements=["torch", "transformers"])
    return ModelRef(name, str(logged.registered_model_version)), adapter_dir


def _expected(adapter_dir: Path) -> str:
    """The greedy answer of the adapter on its own (PEFT, unmerged, in this process)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(_base_of(adapter_dir))
    model = PeftModel.from_pretrained(base, adapter_dir)
    chat = ChatModel(model, AutoTokenizer.from_pretrained(adapter_dir), "reference")
    return chat.complete(CONVERSATION, max_new_tokens=8).text


def _base_of(adapter_dir: Path) -> str:
    import json

    return str(json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, new_data_dir: Any) -> Iterator[dict[str, Any]]:
    data_dir = new_data_dir(tmp_path_factory.mktemp("shared-serving"))
    endpoints = LocalEndpoints(offline_settings(data_dir),
                               ready_timeout_s=120)
    (support, support_dir), (sales, sales_dir) = (_log_fine_tune(data_dir, "ft-support", 1),
                                                  _log_fine_tune(data_dir, "ft-sales", 2))
    full, _ = _log_fine_tune(data_dir, "ft-full", 3, adapter=False)
    yield {"endpoints": endpoints, "data_dir": data_dir, "support": support, "sales": sales, "full": full,
           "expected": {"support": _expected(support_dir), "sales": _expected(sales_dir)}}
    endpoints.stop_all()


def _entry(endpoints: LocalEndpoints, endpoint: str, deployment: str) -> DeploymentState:
    state = read_state(EndpointFiles(endpoints._root / endpoint))
    assert state is not None
    return state.deployments[deployment]


def _via_router(endpoints: LocalEndpoints, endpoint: str) -> str:
    info = endpoints.get_endpoint(endpoint)
    assert info is not None and info.scoring_uri
    answer = httpx.post(info.scoring_uri, json=GREEDY, timeout=60,
                        headers={"Authorization": f"Bearer {endpoints.get_key(endpoint)}"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["output"])


def _live(endpoints: LocalEndpoints, endpoint: str, model: ModelRef, deployment: str = "blue") -> None:
    endpoints.deploy(model, endpoint, deployment, {})
    endpoints.set_traffic(endpoint, {deployment: 100})


def test_two_endpoints_share_one_process_and_each_answers_with_its_own_adapter(world):
    endpoints, expected = world["endpoints"], world["expected"]
    assert expected["support"] != expected["sales"]  # the two fine-tunes really answer differently
    _live(endpoints, "ep-support", world["support"])
    _live(endpoints, "ep-sales", world["sales"])
    support, sales = _entry(endpoints, "ep-support", "blue"), _entry(endpoints, "ep-sales", "blue")
    assert support.pool and support.pid == sales.pid and support.port == sales.port
    for _ in range(2):  # in turn, so a left-over active adapter would show
        assert _via_router(endpoints, "ep-support") == expected["support"]
        assert _via_router(endpoints, "ep-sales") == expected["sales"]
    # A fine-tune registered without its adapter cannot share: it gets a process of its own.
    _live(endpoints, "ep-full", world["full"])
    full = _entry(endpoints, "ep-full", "blue")
    assert full.pool is None and full.pid not in (None, support.pid)
    assert _via_router(endpoints, "ep-full").strip() != ""
    endpoints.delete_endpoint("ep-full")


def test_blue_green_within_an_endpoint_is_an_adapter_swap_in_the_same_process(world):
    endpoints, expected = world["endpoints"], world["expected"]
    _live(endpoints, "ep-swap", world["support"])
    pid = _entry(endpoints, "ep-swap", "blue").pid
    endpoints.deploy(world["sales"], "ep-swap", "green", {})
    assert _entry(endpoints, "ep-swap", "green").pid == pid
    endpoints.set_traffic("ep-swap", {"green": 100})
    assert _via_router(endpoints, "ep-swap") == expected["sales"]
    endpoints.delete_deployment("ep-swap", "blue")
    green = _entry(endpoints, "ep-swap", "green")
    assert server_process.alive(green, EndpointFiles(endpoints._root / "ep-swap"))
    assert _via_router(endpoints, "ep-swap") == expected["sales"]
    endpoints.delete_endpoint("ep-swap")


def test_deleting_one_endpoint_leaves_the_other_serving_from_the_same_process(world):
    # (A killed shared server reading Failed and coming back is the platform contract's, whose local runs
    # deploy through this same shared process.)
    endpoints, expected = world["endpoints"], world["expected"]
    _live(endpoints, "ep-support", world["support"])
    _live(endpoints, "ep-sales", world["sales"])
    pid = _entry(endpoints, "ep-support", "blue").pid
    assert pid is not None and _entry(endpoints, "ep-sales", "blue").pid == pid
    endpoints.delete_endpoint("ep-sales")
    assert _via_router(endpoints, "ep-support") == expected["support"]
    assert _entry(endpoints, "ep-support", "blue").pid == pid


def test_an_endpoint_deleted_and_created_again_before_the_server_looks_answers_with_its_adapter(world):
    """The shared server follows the state files every WATCH_INTERVAL_S: a delete and a new deploy of the
    same model under the same name can both land between two looks. (The server, paused here so that
    they do, then saw only a new incarnation and unloaded the adapter it had just loaded: all 500s.)"""
    endpoints, expected = world["endpoints"], world["expected"]
    _live(endpoints, "ep-support", world["support"])  # keeps the shared process serving meanwhile
    _live(endpoints, "ep-again", world["sales"])
    pid = _entry(endpoints, "ep-again", "blue").pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        endpoints.delete_endpoint("ep-again")
        endpoints.begin_deployment(world["sales"], "ep-again", "blue", {})
    finally:
        os.kill(pid, signal.SIGCONT)
    assert _entry(endpoints, "ep-again", "blue").pid == pid  # the same process, a new incarnation
    deadline = time.monotonic() + 60
    while not (status := endpoints.deployment_status("ep-again", "blue")).final:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status.succeeded, status.error
    endpoints.set_traffic("ep-again", {"blue": 100})
    assert _via_router(endpoints, "ep-again") == expected["sales"]
    endpoints.delete_endpoint("ep-again")


def test_an_adapter_the_shared_server_cannot_load_fails_its_deployment_saying_why(world):
    """Not Creating until the deploy timeout (an hour): the server reports the failed load on the
    deployment's health check, and the platform reads Failed with the reason."""
    endpoints = world["endpoints"]
    _live(endpoints, "ep-support", world["support"])  # the shared process, already serving another
    broken, _ = _log_fine_tune(world["data_dir"], "ft-broken", 4)
    found = endpoints.adapter_of(broken)
    assert found is not None
    (found[0] / "adapter_model.safetensors").write_bytes(b"not weights")
    endpoints.begin_deployment(broken, "ep-broken", "blue", {})
    deadline = time.monotonic() + 60
    while not (status := endpoints.deployment_status("ep-broken", "blue")).final:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status.provisioning == Provisioning.FAILED, status
    assert "adapter could not be loaded" in (status.error or ""), status.error
    assert _via_router(endpoints, "ep-support") == world["expected"]["support"]  # the others still answer
    endpoints.delete_endpoint("ep-broken")
