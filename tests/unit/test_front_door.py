"""The front door's rules on the in-memory world, through the devhost's HTTP routes and the openai client.

The world's lifecycle runs its steps from its queue in a background thread (as the Functions host would),
the in-memory platform takes its provisioning time, and the front door is the function app's own trigger,
served by the devhost on a loopback port. A model goes live, the sweep puts it to sleep (its deployment
deleted, its endpoint kept), and then clients call it by name.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import openai
import pytest

from devhost.host import DevHost
from shared.front import FrontDoor
from shared.platforms.port import Provisioning
from shared.runs import Run, State
from tests.fakes.world import MemoryWorld

KEY = "front-door-test-key"
MODEL = "autopilot-chat"  # ENDPOINT_NAME: the project's name for now
QUESTION = [{"role": "user", "content": "How long is the warranty?"}]


class FrontWorld(MemoryWorld):
    """The in-memory world with the function app served by the devhost, its front door over this world."""

    host: DevHost

    def asleep_run(self) -> Run:
        """A run that went live and was put to sleep by the sweep after its TTL."""
        live = self.live_run()
        self.skipped += timedelta(hours=3)
        report = self.life.on_sweep()
        assert report.deleted == [live.endpoint], report
        return self.get(live.run_id)

    def client(self, **options: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.host.base_url}/api/v1", api_key=KEY, **options)  # type: ignore[arg-type]

    def post(self, path: str, body: object, **headers: str) -> httpx.Response:
        return httpx.post(f"{self.host.base_url}/api/v1/{path}", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {KEY}", **headers})

    @contextmanager
    def stepping(self) -> Iterator[None]:
        """The step queue runs in the background while the test's clients wait, as on the host."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                self.drain()
                time.sleep(0.01)

        thread = threading.Thread(target=loop, name="steps", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FrontWorld]:
    world = FrontWorld(tmp_path, IDLE_TTL="1h", FRONT_DOOR_KEY=KEY, SMOKE_CONVERSATIONS="2",
                       FRONT_HOLD="30s")
    door = FrontDoor(world.life, KEY, poll_s=0.01)
    import function_app
    import functions.front_door

    monkeypatch.setattr(functions.front_door, "front", lambda: door)
    with DevHost(function_app.app, world.settings, env={"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"},
                 watch_blobs=False, timers=False, relay=False, alerts=False, queues=False) as host:
        world.host = host
        yield world


def test_teardown_deletes_the_deployment_and_keeps_the_endpoint(world: FrontWorld) -> None:
    run = world.asleep_run()
    endpoint = world.platform.get_endpoint(run.endpoint)
    assert run.state == State.TORN_DOWN
    assert endpoint is not None and endpoint.deployments == ()  # nothing bills; URL and keys stay
    assert world.platform.effects["delete_endpoint"] == 0


def test_the_openai_client_gets_its_answer_from_an_asleep_model(world: FrontWorld) -> None:
    run = world.asleep_run()
    made = world.platform.effects["deploy"]
    with world.stepping():
        reply = world.client().chat.completions.create(model=MODEL, messages=QUESTION)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "ok"
    woken = world.get(run.run_id)
    assert woken.state == State.LIVE and woken.wakes == 1
    assert world.platform.effects["deploy"] == made + 1
    # Awake now: the next request is forwarded at once, streamed too, and wakes nothing.
    chunks = world.client().chat.completions.create(model=MODEL, messages=QUESTION,  # type: ignore[arg-type]
                                                    stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ok"
    assert world.platform.effects["deploy"] == made + 1
    runs = world.client().models.list()
    assert [m.id for m in runs.data] == [MODEL]


def test_thirty_clients_during_a_wake_start_one_redeploy_and_all_get_answers(world: FrontWorld) -> None:
    run = world.asleep_run()
    made = world.platform.effects["deploy"]
    client = world.client()
    with world.stepping(), ThreadPoolExecutor(30) as pool:
        replies = list(pool.map(lambda _: client.chat.completions.create(
            model=MODEL, messages=QUESTION), range(30)))  # type: ignore[arg-type]
    assert [r.choices[0].message.content for r in replies] == ["ok"] * 30
    assert world.platform.effects["deploy"] == made + 1 and world.get(run.run_id).wakes == 1


def test_scale_up_timeout_zero_answers_503_at_once_with_the_retry_headers(world: FrontWorld) -> None:
    run = world.asleep_run()
    started = time.monotonic()
    answer = world.post("chat/completions", {"model": MODEL, "messages": QUESTION},
                        **{"X-Scale-Up-Timeout": "0"})
    assert time.monotonic() - started < 5
    assert answer.status_code == 503
    assert answer.headers["x-should-retry"] == "true"
    assert answer.headers["Retry-After"] == "30" and answer.headers["retry-after-ms"] == "30000"
    assert answer.json()["error"]["code"] == "model_not_ready"
    assert world.get(run.run_id).state == State.DEPLOYING  # the wake began; the client comes back later


def test_a_missing_or_wrong_key_is_401_and_an_unknown_model_404_in_openais_shape(world: FrontWorld) -> None:
    world.live_run()
    base = f"{world.host.base_url}/api/v1"
    missing = httpx.post(f"{base}/chat/completions", json={"model": MODEL, "messages": QUESTION})
    wrong = httpx.get(f"{base}/models", headers={"Authorization": "Bearer not-the-key"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["error"]["code"] == "invalid_api_key" and KEY not in missing.text
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base, api_key="wrong").chat.completions.create(model=MODEL, messages=QUESTION)  # type: ignore[arg-type]
    unknown = world.post("chat/completions", {"model": "someone-else", "messages": QUESTION})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        world.client().chat.completions.create(model="someone-else", messages=QUESTION)  # type: ignore[arg-type]


def test_the_seed_payload_has_a_route_of_its_own(world: FrontWorld) -> None:
    world.live_run()
    payload = {"input_data": {"input_string": QUESTION, "parameters": {"max_new_tokens": 8}}, "params": {}}
    answer = world.post(f"models/{MODEL}/score", payload)
    assert answer.status_code == 200 and answer.json() == {"output": "ok"}


def test_the_sweep_puts_a_woken_model_to_sleep_again_after_its_ttl(world: FrontWorld) -> None:
    run = world.asleep_run()
    with world.stepping():
        world.client().chat.completions.create(model=MODEL, messages=QUESTION)  # type: ignore[arg-type]
    assert world.get(run.run_id).state == State.LIVE
    world.skipped += timedelta(minutes=30)
    assert world.life.on_sweep().deleted == []  # within its TTL of the request
    world.skipped += timedelta(hours=2)
    report = world.life.on_sweep()
    again = world.get(run.run_id)
    assert report.deleted == [run.endpoint] and again.state == State.TORN_DOWN and again.teardowns == 2


def test_a_request_through_the_front_counts_as_activity_once_a_minute(world: FrontWorld) -> None:
    run = world.live_run()
    writes = []
    marks = world.ledger.activity
    original = marks.mark
    marks.mark = lambda endpoint, at: (writes.append(at), original(endpoint, at))[-1]  # type: ignore[method-assign]
    for _ in range(3):
        assert world.post("chat/completions", {"model": MODEL, "messages": QUESTION}).status_code == 200
    assert len(writes) == 1 and marks.get(run.endpoint) == writes[0]
    # The platform's own metrics lag; the front's mark alone keeps the model awake past its TTL.
    world.platform.endpoints[run.endpoint].last_request = None
    world.skipped += timedelta(minutes=50)
    assert world.life.on_sweep().deleted == []


def test_a_wake_whose_deployment_fails_answers_503_do_not_retry_and_alerts_once(world: FrontWorld) -> None:
    run = world.asleep_run()
    world.platform.script_deployment(Provisioning.FAILED, error="OutOfQuota: no capacity for the SKU")
    before = world.alerts()
    with world.stepping():
        first = world.post("chat/completions", {"model": MODEL, "messages": QUESTION})
        second = world.post("chat/completions", {"model": MODEL, "messages": QUESTION})
    for answer in (first, second):
        assert answer.status_code == 503 and answer.headers["x-should-retry"] == "false"
        assert "OutOfQuota" in answer.json()["error"]["message"]
    new = world.alerts()[len(before):]
    assert new == ["deploy.failed"] and world.get(run.run_id).wakes == 1
    assert json.loads(first.text)["error"]["code"] == "model_wake_failed"


def test_autopilot_key_prints_the_key_the_front_door_accepts_and_nothing_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main
    from shared.front import front_key
    from shared.settings import Settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOPILOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FRONT_DOOR_KEY", raising=False)
    assert main(["key"]) == 0
    printed = capsys.readouterr().out
    settings = Settings.from_env({"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true",
                                  "AUTOPILOT_DATA_DIR": str(tmp_path / "data")})
    assert printed == f"{front_key(settings)}\n" and len(printed.strip()) >= 32
    assert (tmp_path / "data" / "front-door.key").stat().st_mode & 0o777 == 0o600
    # A project's own key (issue 23): derived from the install's, opening that project only.
    from shared.front.keys import project_key

    assert main(["key", "sales"]) == 0
    assert capsys.readouterr().out == f"{project_key(front_key(settings), 'sales')}\n"
    assert main(["key", "not_a_project"]) == 2 and capsys.readouterr().out == ""


def test_front_hold_stays_under_the_http_limit_and_the_model_is_the_name_without_azures_suffix() -> None:
    from shared.platforms.endpoint_names import project_name
    from shared.settings import Settings, SettingsError

    base = {"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"}
    assert Settings.from_env(base).front_hold == timedelta(seconds=200)
    with pytest.raises(SettingsError, match="230 s"):
        Settings.from_env({**base, "FRONT_HOLD": "229s"})
    azure = Settings.from_env({**base, "AUTOPILOT_PLATFORM": "azureml", "AZUREML_SUBSCRIPTION_ID": "s",
                               "AZUREML_RESOURCE_GROUP": "g", "AZUREML_WORKSPACE": "w",
                               "ENDPOINT_NAME": "support-bot"})
    assert azure.endpoint_name.startswith("support-bot-") and project_name(azure) == "support-bot"
