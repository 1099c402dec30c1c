"""Local endpoints against real server processes, a real MLflow registry and the tiny chat model.

One endpoint is deployed for the module (deploying costs a model load, seconds on CPU). Tests run in any
order: the `blue` fixture hands each test that endpoint as it starts out (blue alone, all traffic, the
registry's champion), bringing it back first if an earlier test deleted or changed it.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openai
import pytest

from engine.chat_model import ChatModel
from engine.models.tiny import ensure_tiny_base_model
from shared.platforms.local import mlflow_store, server_process
from shared.platforms.local.endpoint_files import EndpointFiles, EndpointState, read_state, write_state
from shared.platforms.local.endpoints import LocalEndpoints
from shared.platforms.port import (
    MANAGED_TAG,
    ActivityUnavailable,
    ModelRef,
    NotFoundError,
    PlatformError,
)
from tests.support import offline_settings

pytestmark = pytest.mark.integration

ENDPOINT = "ep-local-test"
CONVERSATION = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the capital of France?"}]
SEED_PAYLOAD = {"input_data": {"input_string": CONVERSATION,
                               "parameters": {"temperature": 0.7, "top_p": 0.9, "do_sample": True,
                                              "max_new_tokens": 8}},
                "params": {}}
TIMINGS: dict[str, float] = {}


def _register_models(data_dir: Path) -> tuple[ModelRef, ModelRef]:
    """Log the untrained tiny model as a registered llm/v1/chat model; version 2 reuses version 1's files."""
    client = mlflow_store.use(data_dir)
    first = client.get_model_version("tiny-chat", _log_tiny(data_dir, "tiny-chat"))
    second = client.create_model_version("tiny-chat", source=first.source, run_id=first.run_id,
                                         model_id=first.model_id)
    return ModelRef("tiny-chat", str(first.version)), ModelRef("tiny-chat", str(second.version))


def _log_tiny(data_dir: Path, name: str, chat_template: str | None = None) -> str:
    """Log the tiny model (its tokenizer with `chat_template`, if given) as version of `name`; the version."""
    import mlflow
    from transformers import AutoModelForCausalLM, AutoTokenizer

    client = mlflow_store.use(data_dir)
    experiment = mlflow_store.ensure_experiment(client, data_dir, "endpoint-tests")
    base = ensure_tiny_base_model(data_dir / "base-models")
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.chat_template = chat_template or tokenizer.chat_template
    components = {"model": AutoModelForCausalLM.from_pretrained(base), "tokenizer": tokenizer}
    with mlflow.start_run(experiment_id=experiment):
        logged = mlflow.transformers.log_model(components, name="model", task="llm/v1/chat",
                                               registered_model_name=name,
                                               pip_requirements=["torch", "transformers"])
    return str(logged.registered_model_version)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, new_data_dir) -> Path:
    return new_data_dir(tmp_path_factory.mktemp("endpoints-data"))


@pytest.fixture(scope="module")
def endpoints(data_dir: Path) -> Iterator[LocalEndpoints]:
    platform = LocalEndpoints(offline_settings(data_dir),
                              ready_timeout_s=120)
    yield platform
    platform.stop_all()


@pytest.fixture(scope="module")
def models(data_dir: Path) -> tuple[ModelRef, ModelRef]:
    return _register_models(data_dir)


@pytest.fixture(scope="module")
def first_blue(endpoints: LocalEndpoints, models: tuple[ModelRef, ModelRef]) -> None:
    """The module's first deployment of `blue`, timed."""
    started = time.monotonic()
    info = endpoints.deploy(models[0], ENDPOINT, "blue", {MANAGED_TAG: "true"})
    TIMINGS["deploy_s"] = time.monotonic() - started
    assert info.traffic == {"blue": 0}


@pytest.fixture
def blue(endpoints: LocalEndpoints, models: tuple[ModelRef, ModelRef], first_blue: None) -> int:
    """`blue` alone on the endpoint with all its traffic (so version 1 is the champion); returns its port.

    Deploying the same model again is a no-op on a running server, so this costs nothing unless an earlier
    test deleted the endpoint or left another deployment on it."""
    info = endpoints.get_endpoint(ENDPOINT)
    if info is not None and info.deployments != ("blue",):
        endpoints.delete_endpoint(ENDPOINT)
    endpoints.deploy(models[0], ENDPOINT, "blue", {MANAGED_TAG: "true"})
    endpoints.set_traffic(ENDPOINT, {"blue": 100})
    return _port(endpoints, "blue")


def _state(endpoints: LocalEndpoints) -> EndpointState:
    state = read_state(EndpointFiles(endpoints._root / ENDPOINT))
    assert state is not None
    return state


def _port(endpoints: LocalEndpoints, deployment: str) -> int:
    return _state(endpoints).deployments[deployment].port


def _serves(proc: Path, endpoint_dir: Path) -> bool:
    try:
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return server_process.SERVER_MODULE.encode() in cmdline and str(endpoint_dir).encode() in cmdline


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
            return True
        time.sleep(0.1)
    return False


def aliases(data_dir: Path) -> dict[str, str]:
    """The registered model's aliases, alias -> version."""
    model = mlflow_store.use(data_dir).get_registered_model("tiny-chat")
    return {alias: str(version) for alias, version in model.aliases.items()}


def test_deploy_creates_a_ready_keyed_endpoint_and_is_idempotent(endpoints, models, blue):
    info = endpoints.get_endpoint(ENDPOINT)
    assert info is not None
    assert info.tags == {MANAGED_TAG: "true"} and info.traffic == {"blue": 100}
    # The endpoint's URL is its router's, not the deployment's: it outlives deployments, swaps and sleep.
    router = _state(endpoints).router_port
    assert info.deployments == ("blue",) and info.scoring_uri == f"http://127.0.0.1:{router}/score"
    assert router != blue
    assert info.created_at is not None and info.last_deployed_at is not None
    assert info.last_deployed_at >= info.created_at
    assert [e.name for e in endpoints.list_endpoints()] == [ENDPOINT]
    assert httpx.get(f"http://127.0.0.1:{blue}/health").json()["status"] == "ready"  # no key needed

    pid = _state(endpoints).deployments["blue"].pid
    started = time.monotonic()
    again = endpoints.deploy(models[0], ENDPOINT, "blue", {"other": "tags"})
    assert time.monotonic() - started < 2, "redeploying the same model must not restart the server"
    assert _state(endpoints).deployments["blue"].pid == pid
    assert again.tags == {MANAGED_TAG: "true"} and again.traffic == {"blue": 100}


def test_key_stays_out_of_state_command_line_and_logs(endpoints, blue):
    files = EndpointFiles(endpoints._root / ENDPOINT)
    key = endpoints.get_key(ENDPOINT)
    assert len(key) >= 32
    assert stat.S_IMODE(os.stat(files.key).st_mode) == 0o600
    pid = _state(endpoints).deployments["blue"].pid
    assert key not in Path(f"/proc/{pid}/cmdline").read_text()
    assert key not in files.state.read_text()
    assert key not in files.server_log("blue").read_text()
    assert key not in repr(endpoints.get_endpoint(ENDPOINT))


def test_score_answers_the_seed_payload(endpoints, blue):
    started = time.monotonic()
    answer = endpoints.score(ENDPOINT, SEED_PAYLOAD)
    TIMINGS["score_s"] = time.monotonic() - started
    assert isinstance(answer["output"], str) and answer["output"]

    batch = {"input_data": {"input_string": [CONVERSATION, CONVERSATION[1:]],
                            "parameters": {"do_sample": False, "max_new_tokens": 4}}, "params": {}}
    outputs = endpoints.score(ENDPOINT, batch, deployment="blue")["output"]
    assert isinstance(outputs, list) and len(outputs) == 2 and all(isinstance(o, str) and o for o in outputs)
    print(f"\ndeploy (process start to ready): {TIMINGS['deploy_s']:.1f} s; "
          f"one /score (8 new tokens): {TIMINGS['score_s'] * 1000:.0f} ms")


def test_openai_client_gets_a_chat_completion(endpoints, blue):
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{blue}/v1", api_key=endpoints.get_key(ENDPOINT))
    completion = client.chat.completions.create(model="blue", messages=CONVERSATION,  # type: ignore[arg-type]
                                                max_tokens=6, temperature=0)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert isinstance(completion.choices[0].message.content, str) and completion.choices[0].message.content
    assert completion.usage is not None and 1 <= completion.usage.completion_tokens <= 6
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    wrong = openai.OpenAI(base_url=f"http://127.0.0.1:{blue}/v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="blue", messages=CONVERSATION)  # type: ignore[arg-type]


def test_openai_client_streams_the_same_answer(endpoints, blue):
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{blue}/v1", api_key=endpoints.get_key(ENDPOINT))
    whole = client.chat.completions.create(model="blue", messages=CONVERSATION,  # type: ignore[arg-type]
                                           max_tokens=12, temperature=0)
    stream = client.chat.completions.create(model="blue", messages=CONVERSATION,  # type: ignore[arg-type]
                                            max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks) and len({c.id for c in chunks}) == 1
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    text = "".join(d.content or "" for d in deltas)
    assert len([d for d in deltas if d.content]) >= 2, "the answer arrives in pieces, not at once"
    assert text.strip() == (whole.choices[0].message.content or "").strip()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    usage = chunks[-1].usage
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens


def test_score_accepts_the_request_shapes_of_azure_ml_samples(endpoints, blue):
    parameters = {"do_sample": False, "max_new_tokens": 4}
    seed_batch = {"input_data": {"input_string": [CONVERSATION], "parameters": parameters}, "params": {}}
    assert len(endpoints.score(ENDPOINT, seed_batch)["output"]) == 1
    prompts = {"input_data": {"input_string": ["Hello", "Bye"], "parameters": parameters}}
    assert len(endpoints.score(ENDPOINT, prompts)["output"]) == 2
    newer = {"input_data": CONVERSATION, "params": parameters}
    assert isinstance(endpoints.score(ENDPOINT, newer)["output"], str)
    openai_style = {"messages": CONVERSATION, "max_tokens": 4, "temperature": 0}
    answer = endpoints.score(ENDPOINT, openai_style)
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"]


def test_autopilot_invoke_and_credentials_fetch_the_key_but_never_print_it(endpoints, blue, data_dir, azurite,
                                                                         monkeypatch, tmp_path, capsys):
    import json

    from cli.main import main

    for name, value in {"AUTOPILOT_STORAGE": azurite.connection_string, "AUTOPILOT_DATA_DIR": str(data_dir),
                        "ENDPOINT_NAME": ENDPOINT, "AUTOPILOT_PLATFORM": "local"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no local.settings.json here
    key = endpoints.get_key(ENDPOINT)
    seed = tmp_path / "sample_score.json"  # the shape of azureml-examples' sample_score.json
    seed.write_text(json.dumps({"input_data": {"input_string": [CONVERSATION],
                                               "parameters": {"max_new_tokens": 4}}, "params": {}}))
    assert main(["invoke", "--request-file", str(seed)]) == 0
    printed = capsys.readouterr()
    assert len(json.loads(printed.out)["output"]) == 1 and key not in printed.out + printed.err
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps({"messages": CONVERSATION, "max_tokens": 3}))
    assert main(["invoke", "-r", str(chat), "--endpoint", ENDPOINT, "--deployment", "blue"]) == 0
    assert json.loads(capsys.readouterr().out)["object"] == "chat.completion"
    assert main(["invoke", "-r", str(chat), "--endpoint", "ep-missing"]) == 1
    assert "ep-missing does not exist" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["invoke", "-r", str(tmp_path / "bad.json")]) == 2

    assert main(["endpoint", "credentials"]) == 0
    shown = capsys.readouterr().out
    stable = _state(endpoints).router_port  # the endpoint's own URL, not its deployment's
    assert f"http://127.0.0.1:{stable}/score" in shown and f"http://127.0.0.1:{stable}/v1" in shown
    assert str(endpoints.key_file(ENDPOINT)) in shown and key not in shown


def test_requests_need_the_key_and_a_wellformed_body(endpoints, blue):
    url = f"http://127.0.0.1:{blue}"
    key = endpoints.get_key(ENDPOINT)
    assert httpx.post(f"{url}/score", json=SEED_PAYLOAD).status_code == 401
    wrong = {"Authorization": f"Bearer x{key}"}
    assert httpx.post(f"{url}/score", json=SEED_PAYLOAD, headers=wrong).status_code == 401
    assert httpx.post(f"{url}/score", content=b"{not json").status_code == 401  # the key is checked first
    assert httpx.post(f"{url}/score", json=SEED_PAYLOAD, headers={"api-key": key}).status_code == 200

    auth = {"Authorization": f"Bearer {key}"}
    malformed = [
        {"input_data": {"input_string": "hello"}},
        {"input_data": {"input_string": [CONVERSATION, []]}},
        {"input_data": {"input_string": [{"role": "robot", "content": "hi"}]}},
        {"input_data": {"input_string": CONVERSATION, "parameters": {"max_new_tokens": 0}}},
        {"inputs": CONVERSATION},
    ]
    for body in malformed:
        response = httpx.post(f"{url}/score", json=body, headers=auth)
        assert response.status_code == 422, body
        assert response.json()["detail"], "the error names what is wrong"
    assert httpx.post(f"{url}/score", content=b"{not json", headers=auth).status_code == 422
    too_long = {"messages": [{"role": "user", "content": "word " * 600}], "max_tokens": 4}
    for stream in (False, True):  # a stream is refused before it starts, with the same 400
        response = httpx.post(f"{url}/v1/chat/completions", json={**too_long, "stream": stream}, headers=auth)
        assert response.status_code == 400 and "context" in response.json()["detail"]

    with pytest.raises(PlatformError) as refused:
        endpoints.score(ENDPOINT, {"input_data": {"input_string": []}})
    assert not refused.value.transient and key not in str(refused.value)


def test_activity_moves_when_the_endpoint_is_scored(endpoints, blue):
    before = endpoints.endpoint_activity(ENDPOINT)
    time.sleep(0.01)
    endpoints.score(ENDPOINT, SEED_PAYLOAD)
    after = endpoints.endpoint_activity(ENDPOINT)
    assert after is not None and (before is None or after > before)
    assert abs((datetime.now(UTC) - after).total_seconds()) < 30


def test_activity_of_an_endpoint_never_scored_or_unreadable(tmp_path):
    platform = LocalEndpoints(offline_settings(tmp_path))
    files = EndpointFiles(tmp_path / "endpoints" / "ep-quiet")
    files.root.mkdir(parents=True)
    write_state(files, EndpointState(tags={}, created_at=datetime.now(UTC).isoformat()))
    assert platform.endpoint_activity("ep-quiet") is None
    files.requests.write_text("2026-11-29T10:00:00.000+00:00\nnot-a-time\n")
    with pytest.raises(ActivityUnavailable):
        platform.endpoint_activity("ep-quiet")
    with pytest.raises(NotFoundError):
        platform.endpoint_activity("ep-missing")


def test_stop_all_then_resume_all_serves_again_with_the_same_traffic(tmp_path, new_data_dir):
    # Its own data dir: stop_all stops every endpoint of a platform, and the others here keep their ports.
    new_data_dir(tmp_path)
    endpoints = LocalEndpoints(offline_settings(tmp_path),
                               ready_timeout_s=120)
    model, _ = _register_models(tmp_path)
    endpoints.deploy(model, ENDPOINT, "blue", {MANAGED_TAG: "true"})
    endpoints.set_traffic(ENDPOINT, {"blue": 100})
    payload = {"input_data": {"input_string": [{"role": "user", "content": "hi"}],
                              "parameters": {"max_new_tokens": 2}}}
    url = endpoints.get_endpoint(ENDPOINT).scoring_uri  # type: ignore[union-attr]
    endpoints.stop_all()  # what `autopilot up` does on Ctrl-C
    with pytest.raises(PlatformError, match="not running"):
        endpoints.score(ENDPOINT, payload)
    assert endpoints.resume_all() == [f"{ENDPOINT}/blue"]  # ... and on its next start
    assert endpoints.get_endpoint(ENDPOINT).traffic == {"blue": 100}  # type: ignore[union-attr]
    assert endpoints.get_endpoint(ENDPOINT).scoring_uri == url  # type: ignore[union-attr]
    key = {"Authorization": f"Bearer {endpoints.get_key(ENDPOINT)}"}
    assert httpx.post(url or "", json=payload, headers=key, timeout=60).json()["output"]
    assert endpoints.score(ENDPOINT, payload)["output"]
    assert endpoints.resume_all() == []
    endpoints.delete_endpoint(ENDPOINT)


def test_names_and_traffic_are_validated(endpoints, blue):
    for bad in ("ab", "1abc", "a" * 33, "../etc", "ep_x", "ends-with-"):
        with pytest.raises(PlatformError, match="not valid"):
            endpoints.get_endpoint(bad)
    with pytest.raises(NotFoundError):
        endpoints.set_traffic(ENDPOINT, {"nope": 100})
    with pytest.raises(PlatformError, match="sum"):
        endpoints.set_traffic(ENDPOINT, {"blue": 50})
    with pytest.raises(PlatformError, match="still takes"):
        endpoints.delete_deployment(ENDPOINT, "blue")
    with pytest.raises(NotFoundError):
        endpoints.score("ep-missing", SEED_PAYLOAD)
    assert endpoints.get_endpoint(ENDPOINT).traffic == {"blue": 100}  # type: ignore[union-attr]


def test_the_chat_template_saved_with_the_model_is_the_one_both_routes_apply(endpoints, data_dir):
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(ensure_tiny_base_model(data_dir / "base-models"))
    # A template of its own: a long preamble before the tiny model's turns.
    template = "{{ '" + "Thank you for your patience. " * 20 + "' }}" + plain.chat_template
    model = ModelRef("tiny-templated", _log_tiny(data_dir, "tiny-templated", template))
    saved = AutoTokenizer.from_pretrained(endpoints.model_dir(model) / "components" / "tokenizer")
    assert saved.chat_template == template, "the template travels with the registered model"
    question = [{"role": "user", "content": "hi"}]

    def tokens(tokenizer):
        encoded = tokenizer.apply_chat_template(question, add_generation_prompt=True, return_dict=True)
        return len(encoded["input_ids"])

    assert tokens(saved) > tokens(plain) + 100
    endpoints.deploy(model, "ep-template", "blue", {})
    try:
        state = read_state(EndpointFiles(endpoints._root / "ep-template"))
        assert state is not None
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{state.deployments['blue'].port}/v1",
                               api_key=endpoints.get_key("ep-template"))
        answer = client.chat.completions.create(model="blue", messages=question, max_tokens=2,  # type: ignore[arg-type]
                                                temperature=0)
        assert answer.usage is not None and answer.usage.prompt_tokens == tokens(saved)
        # Room for the plain template's prompt but not the saved one's: both routes must refuse it.
        max_new = 512 - tokens(saved) + 1
        with pytest.raises(openai.BadRequestError, match="context"):
            client.chat.completions.create(model="blue", messages=question, max_tokens=max_new)  # type: ignore[arg-type]
        payload = {"input_data": {"input_string": question, "parameters": {"max_new_tokens": max_new}}}
        with pytest.raises(PlatformError, match="context"):
            endpoints.score("ep-template", payload, deployment="blue")
    finally:
        endpoints.delete_endpoint("ep-template")


def test_deploying_a_model_that_is_not_registered_is_refused_at_once(endpoints):
    with pytest.raises(NotFoundError, match="tiny-chat version 99 is not registered"):
        endpoints.deploy(ModelRef("tiny-chat", "99"), "ep-broken", "blue", {})


def test_a_server_that_cannot_load_its_model_fails_clearly(endpoints, models, blue, data_dir, tmp_path):
    client = mlflow_store.use(data_dir)
    good = Path(client.get_model_version_download_uri("tiny-chat", models[0].version).removeprefix("file://"))
    broken = shutil.copytree(good, tmp_path / "broken-model")
    (broken / "model" / "model.safetensors").unlink()
    version = client.create_model_version("tiny-chat", source=str(broken)).version

    with pytest.raises(PlatformError) as failed:
        endpoints.deploy(ModelRef("tiny-chat", version), "ep-broken", "blue", {})
    message = str(failed.value)
    assert "stopped while starting" in message and "Traceback" in message, message
    assert endpoints.get_key("ep-broken") not in message
    assert read_state(EndpointFiles(endpoints._root / "ep-broken")).deployments["blue"].pid is None  # type: ignore[union-attr]
    with pytest.raises(PlatformError, match="not running"):
        endpoints.score("ep-broken", SEED_PAYLOAD, deployment="blue")
    assert aliases(data_dir).get("challenger") == str(version)  # it was being deployed
    endpoints.delete_endpoint("ep-broken")
    assert endpoints.get_endpoint("ep-broken") is None
    after = aliases(data_dir)
    assert after.get("challenger") is None and after.get("champion") == models[0].version


def test_both_model_loaders_read_the_same_weights(models, data_dir):
    client = mlflow_store.use(data_dir)
    model_dir = Path(client.get_model_version_download_uri("tiny-chat", models[0].version).removeprefix("file://"))
    direct = ChatModel.load(model_dir, "direct")
    through_mlflow = ChatModel.load_with_mlflow(model_dir, "mlflow")
    answers = [chat.complete(CONVERSATION, max_new_tokens=6, temperature=0.0, top_p=1.0, do_sample=False)
               for chat in (direct, through_mlflow)]
    assert answers[0] == answers[1] and answers[0].completion_tokens >= 1


def test_blue_green_switch_then_delete_leaves_no_process(endpoints, models, blue, data_dir):
    assert endpoints.get_endpoint(ENDPOINT).traffic == {"blue": 100}  # type: ignore[union-attr]
    assert aliases(data_dir) == {"champion": models[0].version}  # blue took all traffic, no challenger left
    green_info = endpoints.deploy(models[1], ENDPOINT, "green", {})
    assert green_info.traffic == {"blue": 100, "green": 0} and green_info.deployments == ("blue", "green")
    assert aliases(data_dir) == {"champion": models[0].version, "challenger": models[1].version}
    url = green_info.scoring_uri or ""
    key = {"Authorization": f"Bearer {endpoints.get_key(ENDPOINT)}"}
    assert url == f"http://127.0.0.1:{_state(endpoints).router_port}/score", "one URL, whoever serves"
    assert endpoints.score(ENDPOINT, SEED_PAYLOAD, deployment="green")["output"]
    pinned = httpx.post(url, json=SEED_PAYLOAD, timeout=60,
                        headers={**key, "azureml-model-deployment": "green"})
    assert pinned.status_code == 200 and pinned.json()["output"]

    endpoints.set_traffic(ENDPOINT, {"green": 100})
    assert aliases(data_dir) == {"champion": models[1].version}
    info = endpoints.get_endpoint(ENDPOINT)
    assert info is not None and info.traffic == {"blue": 0, "green": 100}
    blue_pid = _state(endpoints).deployments["blue"].pid
    green_pid = _state(endpoints).deployments["green"].pid
    assert blue_pid and green_pid

    endpoints.delete_deployment(ENDPOINT, "blue")
    endpoints.delete_deployment(ENDPOINT, "blue")  # deleting a missing deployment is fine
    assert _gone(blue_pid)
    assert endpoints.get_endpoint(ENDPOINT).deployments == ("green",)  # type: ignore[union-attr]
    assert endpoints.score(ENDPOINT, SEED_PAYLOAD)["output"]
    assert httpx.post(url, json=SEED_PAYLOAD, headers=key, timeout=60).json()["output"]  # swapped, same URL

    # Asleep (no deployment): the URL stays and says so, as Azure ML does; a new deployment answers there.
    endpoints.set_traffic(ENDPOINT, {"green": 0})
    endpoints.delete_deployment(ENDPOINT, "green")
    asleep = httpx.post(url, json=SEED_PAYLOAD, headers=key, timeout=10)
    assert asleep.status_code == 404 and "No valid deployments" in asleep.text
    assert endpoints.get_endpoint(ENDPOINT).scoring_uri == url  # type: ignore[union-attr]
    endpoints.deploy(models[1], ENDPOINT, "green", {})
    endpoints.set_traffic(ENDPOINT, {"green": 100})
    green_pid = _state(endpoints).deployments["green"].pid
    assert httpx.post(url, json=SEED_PAYLOAD, headers=key, timeout=60).json()["output"]
    router_pid = _state(endpoints).router_pid
    assert router_pid

    endpoints.delete_endpoint(ENDPOINT)
    endpoints.delete_endpoint(ENDPOINT)  # and so is deleting a missing endpoint
    assert aliases(data_dir) == {"champion": models[1].version}, "the champion is what a redeploy brings back"
    assert _gone(green_pid, within_s=1.0) and _gone(router_pid, within_s=1.0)
    assert endpoints.get_endpoint(ENDPOINT) is None
    assert ENDPOINT not in [e.name for e in endpoints.list_endpoints()]
    with pytest.raises(httpx.TransportError):  # nothing listens at the deleted endpoint's address
        httpx.post(url, json=SEED_PAYLOAD, timeout=2)


def test_concurrent_deploys_share_one_server_which_stops_when_its_state_disappears(endpoints, models):
    with ThreadPoolExecutor(2) as pool:
        infos = list(pool.map(lambda _: endpoints.deploy(models[0], "ep-orphan", "solo", {}), range(2)))
    assert infos[0] == infos[1] and infos[0].deployments == ("solo",)
    files = EndpointFiles(endpoints._root / "ep-orphan")
    pid = read_state(files).deployments["solo"].pid  # type: ignore[union-attr]
    assert pid is not None
    servers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _serves(p, files.root)]
    assert [int(p.name) for p in servers] == [pid], "the second deploy must reuse the first one's server"
    shutil.rmtree(files.root)  # as when someone removes the data dir under a running platform
    assert _gone(pid, within_s=10.0), "the server must notice its state is gone and exit"
    assert "ep-orphan" not in [e.name for e in endpoints.list_endpoints()]
