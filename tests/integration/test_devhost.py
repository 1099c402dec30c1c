"""The devhost drives a small FunctionApp (real azure.functions decorators) against a real Azurite."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob
import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from devhost.azurite import ROOT, free_port
from devhost.host import DevHost
from devhost.triggers import FunctionError
from shared.events import blob_created_event, run_event
from shared.settings import Settings, SettingsError

pytestmark = pytest.mark.integration

Calls = list[tuple[str, Any]]


def make_app(calls: Calls) -> func.FunctionApp:
    """Four functions shaped like the real app's, recording each call."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.function_name("ingest")
    @app.blob_trigger(arg_name="client", path="%INCOMING_CONTAINER%/{name}", connection="AUTOPILOT_STORAGE",
                      source=func.BlobSource.EVENT_GRID)
    def ingest(client: blob.BlobClient) -> None:
        calls.append(("ingest", client))

    @app.function_name("job_events")
    @app.event_grid_trigger(arg_name="event")
    def job_events(event: func.EventGridEvent) -> None:
        if event.get_json().get("runTags", {}).get("fail"):
            raise RuntimeError("handler failed")
        calls.append(("job_events", event))

    @app.function_name("sweep")
    @app.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
    def sweep(timer: func.TimerRequest) -> None:
        calls.append(("sweep", timer))

    @app.function_name("get_run")
    @app.route(route="runs/{run_id}", methods=["GET"])
    def get_run(req: func.HttpRequest) -> func.HttpResponse:
        calls.append(("get_run", req))
        return func.HttpResponse(json.dumps({"run": req.route_params["run_id"], "q": req.params.get("q")}),
                                 status_code=201, mimetype="application/json")

    return app


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def named(calls: Calls, name: str) -> list[Any]:
    return [arg for fn, arg in calls if fn == name]


@pytest.fixture
def env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, "SWEEP_SCHEDULE": "0 0 0 1 1 *"}


@pytest.fixture
def calls() -> Calls:
    return []


@pytest.fixture
def start(env: dict[str, str], calls: Calls) -> Iterator[Callable[..., DevHost]]:
    """Start a DevHost over the test app (only the sources a test asks for); stop all at the end."""
    started: list[DevHost] = []
    app = make_app(calls)  # one app: a restarted host indexes the same app again, as a demo would

    def run(**options: Any) -> DevHost:
        sources = {"watch_blobs": False, "timers": False, "relay": False, "alerts": False}
        host = DevHost(app, Settings.from_env(env), env=env, poll_interval=0.1,
                       **{**sources, **options})
        started.append(host.start())
        return host

    yield run
    for host in started:
        host.stop()


def notify(host: DevHost, kind: str, function: str, body: Any) -> httpx.Response:
    name = f"Host.Functions.{function}" if kind == "blobs" else function
    return httpx.post(f"{host.base_url}/runtime/webhooks/{kind}?functionName={name}", json=body,
                      headers={"aeg-event-type": "Notification"})


def test_uploaded_blob_reaches_the_blob_function_once_even_across_restarts(start, env, calls) -> None:
    host = start(watch_blobs=True)
    service = BlobServiceClient.from_connection_string(env["AUTOPILOT_STORAGE"])
    container = service.get_container_client(env["INCOMING_CONTAINER"])
    assert container.exists(), "the watcher creates the incoming container"
    container.upload_blob("chat.jsonl", b'{"messages": []}\n')
    assert wait_for(lambda: len(named(calls, "ingest")) == 1)
    client = named(calls, "ingest")[0]
    assert type(client) is BlobClient
    assert (client.container_name, client.blob_name) == (env["INCOMING_CONTAINER"], "chat.jsonl")
    assert client.download_blob().readall() == b'{"messages": []}\n'
    host.stop()

    start(watch_blobs=True)
    container.upload_blob("second.jsonl", b"{}\n")
    assert wait_for(lambda: len(named(calls, "ingest")) == 2)
    time.sleep(0.5)
    assert [c.blob_name for c in named(calls, "ingest")] == ["chat.jsonl", "second.jsonl"]


def test_blob_event_of_a_partial_upload_is_ignored(start, env, calls) -> None:
    host = start()
    service = BlobServiceClient.from_connection_string(env["AUTOPILOT_STORAGE"])
    url = service.get_blob_client(env["INCOMING_CONTAINER"], "part.jsonl").url
    partial = blob_created_event(url, content_length=10)
    partial["data"]["api"] = "PutBlock"
    assert notify(host, "blobs", "ingest", [partial]).status_code == 202
    elsewhere = blob_created_event(service.get_blob_client("other", "x.jsonl").url, content_length=1)
    assert notify(host, "blobs", "ingest", elsewhere).status_code == 202
    time.sleep(0.5)
    assert named(calls, "ingest") == []
    incoming = service.get_container_client(env["INCOMING_CONTAINER"])
    incoming.create_container()
    incoming.upload_blob("part.jsonl", b"{}\n")
    assert notify(host, "blobs", "ingest", blob_created_event(url, content_length=10)).status_code == 202
    assert wait_for(lambda: [c.blob_name for c in named(calls, "ingest")] == ["part.jsonl"])


def test_job_event_on_the_queue_is_relayed_and_deleted(start, settings, calls) -> None:
    start(relay=True)
    queue = QueueClient.from_connection_string(settings.storage.connection_string, settings.job_event_queue)
    queue.send_message(json.dumps(run_event("job-1", "Completed", experiment="exp", tags={"run": "r1"})))
    assert wait_for(lambda: len(named(calls, "job_events")) == 1)
    event = named(calls, "job_events")[0]
    assert event.event_type == "Microsoft.MachineLearningServices.RunCompleted"
    assert event.get_json()["runId"] == "job-1"
    assert wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0)


def test_failing_function_answers_500_and_its_message_stays(start, settings, calls, caplog) -> None:
    host = start(relay=True)
    failing = run_event("job-2", "Failed", experiment="exp", tags={"fail": "yes"})
    assert notify(host, "eventgrid", "job_events", [failing]).status_code == 500
    queue = QueueClient.from_connection_string(settings.storage.connection_string, settings.job_event_queue)
    with caplog.at_level(logging.WARNING, logger="devhost.relay"):
        queue.send_message(json.dumps(failing))
        assert wait_for(lambda: "job event" in caplog.text and "not delivered (HTTP 500)" in caplog.text)
    host.stop()
    assert queue.get_queue_properties().approximate_message_count == 1
    assert named(calls, "job_events") == []


def test_a_message_that_keeps_failing_is_deleted_as_poison(start, settings, caplog, monkeypatch) -> None:
    monkeypatch.setattr("devhost.relay.MAX_DEQUEUES", 1)  # one failed delivery, then poison (after ~2 s)
    queue = QueueClient.from_connection_string(settings.storage.connection_string, settings.job_event_queue)
    start(relay=True)
    with caplog.at_level(logging.WARNING, logger="devhost.relay"):
        queue.send_message(json.dumps(run_event("job-3", "Failed", experiment="exp", tags={"fail": "yes"})))
        assert wait_for(lambda: "poison job event" in caplog.text, timeout=10)
    assert wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0)


def test_admin_routes_list_functions_and_fire_the_timer(start, calls) -> None:
    host = start()
    listed = httpx.get(f"{host.base_url}/admin/functions").json()
    assert {f["name"]: f["trigger"] for f in listed} == {
        "ingest": "blobTrigger", "job_events": "eventGridTrigger", "sweep": "timerTrigger",
        "get_run": "httpTrigger"}
    assert httpx.post(f"{host.base_url}/admin/functions/sweep", json={"input": ""}).status_code == 202
    assert wait_for(lambda: len(named(calls, "sweep")) == 1)
    timer = named(calls, "sweep")[0]
    assert isinstance(timer, func.TimerRequest) and timer.past_due is False
    assert httpx.post(f"{host.base_url}/admin/functions/nope", json={}).status_code == 404


def test_every_second_timer_fires_on_schedule(start, env, calls) -> None:
    env["SWEEP_SCHEDULE"] = "* * * * * *"
    start(timers=True)
    assert wait_for(lambda: len(named(calls, "sweep")) >= 2, timeout=4)


def test_subscription_validation_and_http_route(start, calls) -> None:
    host = start()
    handshake = [{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "subject": "",
                  "data": {"validationCode": "abc-123"}, "eventTime": "2026-01-01T00:00:00Z"}]
    answer = httpx.post(f"{host.base_url}/runtime/webhooks/eventgrid?functionName=job_events", json=handshake,
                        headers={"aeg-event-type": "SubscriptionValidation"})
    assert answer.json() == {"validationResponse": "abc-123"}
    assert httpx.post(f"{host.base_url}/runtime/webhooks/eventgrid?functionName=job_events",
                      json=handshake).status_code == 400, "no aeg-event-type header"
    reply = httpx.get(f"{host.base_url}/api/runs/r-7?q=x")
    assert (reply.status_code, reply.json()) == (201, {"run": "r-7", "q": "x"})
    assert httpx.post(f"{host.base_url}/api/runs/r-7").status_code == 405
    assert named(calls, "job_events") == []


def test_bad_settings_fail_at_start_naming_them(env, calls) -> None:
    with pytest.raises(SettingsError, match="TEST_FRACTION"):
        DevHost(make_app(calls), env={**env, "TEST_FRACTION": "2"}).start()
    del env["SWEEP_SCHEDULE"]
    with pytest.raises(FunctionError, match="SWEEP_SCHEDULE"):
        DevHost(make_app(calls), env=env).start()
    with pytest.raises(FunctionError, match="six fields"):
        DevHost(make_app(calls), env={**env, "SWEEP_SCHEDULE": "*/5 * * * *"}).start()


def test_alerts_are_printed_and_stop_leaves_no_thread(env, settings, calls, caplog) -> None:
    before = set(threading.enumerate())
    host = DevHost(make_app(calls), settings, env=env, poll_interval=0.1).start()
    assert httpx.post(f"{host.base_url}/admin/functions/sweep", json={}).status_code == 202
    alerts = Path(settings.data_dir) / "alerts.jsonl"
    with caplog.at_level(logging.WARNING, logger="devhost.alerts"):
        alerts.parent.mkdir(parents=True, exist_ok=True)
        with alerts.open("a") as sink:
            sink.write(json.dumps({"type": "run.failed", "data": {"severity": "error", "run": "r1",
                                                                   "message": "training diverged"}}) + "\n")
        assert wait_for(lambda: "training diverged" in caplog.text)
    assert "ALERT [error] run.failed" in caplog.text and "run=r1" in caplog.text
    host.stop()
    assert [t.name for t in set(threading.enumerate()) - before] == []


def _devhost_command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "devhost", "--port", str(port), "--settings-file", "none.json", *extra]


def test_command_line_runs_until_interrupted_and_refuses_bad_settings(env, tmp_path) -> None:
    port = free_port()
    child_env = {**os.environ, **env, "IDLE_SWEEP_SCHEDULE": "0 0 0 1 1 *"}
    bad = subprocess.run(_devhost_command(port, "--no-azurite"), env={**child_env, "TEST_FRACTION": "7"},
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "TEST_FRACTION" in bad.stderr
    run = subprocess.Popen(_devhost_command(port, "--connection-string", env["AUTOPILOT_STORAGE"]),
                           env=child_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    try:
        assert wait_for(lambda: _answers(f"http://127.0.0.1:{port}/admin/functions"), timeout=30)
        names = {f["name"] for f in httpx.get(f"http://127.0.0.1:{port}/admin/functions").json()}
        assert {"ingest", "job_events", "idle_sweep"} <= names
    finally:
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=30)
    assert run.returncode == 0, output
    assert "stopping" in output


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def _raw_request(host: DevHost, request: bytes) -> bytes:
    """Send `request` as is and read the answer until the server closes the connection."""
    port = int(host.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_a_malformed_content_length_is_answered_400(start) -> None:
    host = start()
    for length in (b"abc", b"-5", b"1e3"):
        answer = _raw_request(host, b"POST /admin/functions/sweep HTTP/1.1\r\nHost: x\r\nContent-Length: "
                              + length + b"\r\n\r\n{}")
        assert answer.startswith(b"HTTP/1.0 400 "), answer[:200]
        assert b"is not a number of bytes" in answer
    assert httpx.get(f"{host.base_url}/admin/host/status").status_code == 200, "still serving"


def test_a_stalled_client_does_not_hold_stop(start) -> None:
    host = start()
    port = int(host.base_url.rsplit(":", 1)[1])
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"POST /admin/functions/sweep HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    try:
        time.sleep(0.2)  # the handler thread is now blocked reading the body that never comes
        stopping = threading.Thread(target=host.stop, daemon=True)
        began = time.monotonic()
        stopping.start()
        stopping.join(10)
        assert not stopping.is_alive(), "stop() waits on a client that never sends its body"
        assert time.monotonic() - began < 5
    finally:
        stalled.close()


def test_every_answer_says_nosniff(start) -> None:
    host = start()
    assert httpx.get(f"{host.base_url}/").headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{host.base_url}/api/runs/r-1").headers["x-content-type-options"] == "nosniff"


def test_a_blob_name_the_emulator_cannot_list_blocks_no_other_upload(start, env, settings, calls,
                                                                    caplog) -> None:
    """Azurite answers 500 to any listing page that holds a name with a control character."""
    host = start(watch_blobs=True)
    container = BlobServiceClient.from_connection_string(env["AUTOPILOT_STORAGE"]).get_container_client(
        env["INCOMING_CONTAINER"])
    for name in ("a.jsonl", "bad\x01name.jsonl", "bad-but-fine.jsonl", "z.jsonl"):
        container.upload_blob(name, b"{}\n")
    with caplog.at_level(logging.ERROR, logger="devhost.watcher"):
        assert wait_for(lambda: len(named(calls, "ingest")) == 3, timeout=20)
        container.upload_blob("later.jsonl", b"{}\n")
        assert wait_for(lambda: len(named(calls, "ingest")) == 4, timeout=20)
        time.sleep(1.0)  # several more polls: still one report
    assert sorted(c.blob_name for c in named(calls, "ingest")) == [
        "a.jsonl", "bad-but-fine.jsonl", "later.jsonl", "z.jsonl"]
    reports = [r for r in caplog.records if "cannot be listed" in r.getMessage()]
    assert len(reports) == 1 and "'bad' followed by a control character" in reports[0].getMessage()
    sink = Path(settings.data_dir) / "alerts.jsonl"
    alerts = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [a["alert_class"] for a in alerts].count("devhost.blobs_unlistable") == 1, alerts
    host.stop()


def test_names_on_both_sides_of_an_unlistable_one_are_all_seen_within_two_polls(start, env, calls,
                                                                               caplog) -> None:
    """A careless user's uploads: the odd name sorts between the others; none of them waits behind it."""
    container = BlobServiceClient.from_connection_string(env["AUTOPILOT_STORAGE"]).get_container_client(
        env["INCOMING_CONTAINER"])
    container.create_container()
    names = ["tiny/one.jsonl", "odd/name\x01x.jsonl", "good/support.jsonl", "odd/namf.jsonl",
             "odd/name.jsonl", "zz/\x02.jsonl", "a.jsonl"]
    for name in names:
        container.upload_blob(name, b"{}\n")
    listable = sorted(n for n in names if n.isprintable())
    with caplog.at_level(logging.ERROR, logger="devhost.watcher"):
        host = start(watch_blobs=True)
        assert wait_for(lambda: len(named(calls, "ingest")) >= len(listable), timeout=2.5 * host.poll_interval
                        + 5), [c.blob_name for c in named(calls, "ingest")]
        time.sleep(0.5)
    assert sorted(c.blob_name for c in named(calls, "ingest")) == listable
    reported = {r.getMessage() for r in caplog.records if "cannot be listed" in r.getMessage()}
    assert len(reported) == 2, reported
    assert all(any(f"{start!r} followed by a control character" in m for m in reported)
               for start in ("odd/name", "zz/"))
    host.stop()


def test_a_blob_function_that_fails_five_times_moves_its_message_to_the_blob_poison_queue(
        env, settings, tmp_path) -> None:
    """As the host: the webhook queues a blob trigger message (202); five failed runs, then the message, as
    the host writes it, is in webjobs-blobtrigger-poison of the blob's storage account."""
    tries: list[str] = []
    app = func.FunctionApp()

    @app.function_name("ingest")
    @app.blob_trigger(arg_name="client", path="%INCOMING_CONTAINER%/{name}", connection="AUTOPILOT_STORAGE",
                      source=func.BlobSource.EVENT_GRID)
    def ingest(client: blob.BlobClient) -> None:
        tries.append(client.blob_name)
        raise RuntimeError("the registry is down")

    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps({"version": "2.0", "extensions": {"queues": {
        "visibilityTimeout": "00:00:00", "maxPollingInterval": "00:00:01"}}}))
    container = BlobServiceClient.from_connection_string(env["AUTOPILOT_STORAGE"]).get_container_client(
        env["INCOMING_CONTAINER"])
    container.create_container()
    container.upload_blob("huge.jsonl", b"{}\n")
    etag = str(container.get_blob_client("huge.jsonl").get_blob_properties().etag).strip('"')
    with DevHost(app, Settings.from_env(env), env=env, poll_interval=0.1, watch_blobs=False, timers=False,
                 relay=False, alerts=False, host_json=host_json) as host:
        event = blob_created_event(container.get_blob_client("huge.jsonl").url, content_length=3, etag=etag)
        assert notify(host, "blobs", "ingest", [event]).status_code == 202
        poison = QueueClient.from_connection_string(env["AUTOPILOT_STORAGE"], "webjobs-blobtrigger-poison",
                                                    message_decode_policy=TextBase64DecodePolicy())
        assert wait_for(lambda: _peek(poison) != [], timeout=20)
    assert tries == ["huge.jsonl"] * 5
    (message,) = _peek(poison)
    assert json.loads(message.content) == {
        "Type": "BlobTrigger", "FunctionId": "Host.Functions.ingest", "BlobType": "BlockBlob",
        "ContainerName": env["INCOMING_CONTAINER"], "BlobName": "huge.jsonl", "ETag": f'"{etag}"'}


def _peek(queue: QueueClient) -> list[Any]:
    try:
        return list(queue.peek_messages(max_messages=32))
    except ResourceNotFoundError:  # created with its first message
        return []

