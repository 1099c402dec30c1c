"""Issue 24, items 7-9: the CLI as a careless user meets it, plus the small misleading pieces.

The app's API is a real HTTP server on a free loopback port (a thread), recording what it was asked: the CLI's
own client, escaping and error handling all run for real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.main import main
from cli.ops import _call, status_text
from shared import ops
from shared.lifecycle import naming
from shared.runs import IllegalTransition, StoreError
from tests.fakes.world import SAMPLE, MemoryWorld

ROOT = Path(__file__).resolve().parents[2]


class Api:
    """A stand-in for the app's runs API: records each request, answers from `answers` by method and path."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                api.requests.append((self.command, self.path))
                code, body = api.answers.get((self.command, self.path), (404, {"error": "no such route"}))
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def api() -> Iterator[Api]:
    served = Api()
    thread = threading.Thread(target=served.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


# item 7: run ids are checked by shape before any request, and every path part is escaped


def test_a_run_id_of_the_wrong_shape_makes_no_request(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("redeploy", "retry"):
        assert main([command, "../../admin/functions/idle_sweep?x=", "--url", api.url]) == 2
        assert "is not a run id" in one_line_error(capsys)
    assert api.requests == []


def test_path_parts_are_escaped(api: Api) -> None:
    _call("POST", api.url, "runs", "a/../b?c=d#e", "redeploy")
    assert api.requests == [("POST", "/api/runs/a%2F..%2Fb%3Fc%3Dd%23e/redeploy")]


# item 8: one line saying what to do, exit 2


def test_a_dead_or_schemeless_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket_closed_port() as port:
        assert main(["status", "--url", f"http://127.0.0.1:{port}"]) == 2
    assert "could not reach" in one_line_error(capsys)
    assert main(["status", "--url", "127.0.0.1:7071"]) == 2
    assert "is not an app's address" in one_line_error(capsys)


def test_unreachable_storage_is_one_line_with_a_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with socket_closed_port() as port:
        dead = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
                f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
                f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1")
        monkeypatch.setenv("AUTOPILOT_STORAGE", dead)
        monkeypatch.setenv("AUTOPILOT_DATA_DIR", str(tmp_path))
        monkeypatch.delenv("AUTOPILOT_URL", raising=False)
        monkeypatch.chdir(tmp_path)  # no local.settings.json here
        assert main(["drop", str(SAMPLE)]) == 2
    err = one_line_error(capsys)
    assert "storage could not be reached" in err and "autopilot up" in err and "--url" in err


def test_a_blob_name_that_climbs_out_is_refused_before_any_upload(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("../x.jsonl", "/abs.jsonl", "a/./b.jsonl", "a\\b.jsonl"):
        assert main(["drop", str(SAMPLE), "--name", name]) == 2
        assert "--name" in one_line_error(capsys)


@pytest.mark.integration  # runs the CLI in a process of its own
def test_output_cut_short_by_the_reader_is_no_traceback(api: Api) -> None:
    runs = [{"run_id": f"run-{i:012x}", "state": "live", "upload": {"blob": f"incoming/{i}.jsonl"}}
            for i in range(5000)]
    api.answers[("GET", "/api/runs")] = (200, {"runs": runs, "endpoints": [], "alerts": []})
    reader = subprocess.Popen([sys.executable, "-m", "cli", "status", "--url", api.url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.readline()
    reader.stdout.close()  # `| head -1`
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 2 and "Traceback" not in err, err


def test_endpoint_credentials_say_where_they_looked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUTOPILOT_STORAGE", "UseDevelopmentStorage=true")
    monkeypatch.setenv("AUTOPILOT_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    assert main(["endpoint", "credentials"]) == 1
    err = capsys.readouterr().err
    assert "autopilot-chat does not exist, looked for in the local engine's data directory" in err
    assert "elsewhere" in err
    assert "AUTOPILOT_DATA_DIR" in err


# item 9: the missing and misleading pieces


def test_autopilot_retry_asks_the_api(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.answers[("POST", "/api/runs/run-0123456789ab/retry")] = (
        202, {"run_id": "run-0123456789ab", "state": "validated", "job": {"attempt": 2}})
    assert main(["retry", "run-0123456789ab", "--url", api.url]) == 0
    assert "retry accepted; attempt 2 is validated" in capsys.readouterr().out
    api.answers[("POST", "/api/runs/run-ba9876543210/retry")] = (409, {"error": "run run-ba98 is live"})
    assert main(["retry", "run-ba9876543210", "--url", api.url]) == 1
    assert "is live" in capsys.readouterr().err


def test_autopilot_retry_without_a_url_uses_the_lifecycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    world = MemoryWorld(tmp_path)
    run = world.upload("chat.jsonl")
    world.platform.finish(run.job_name, "Failed")
    world.life.on_job_event(world.event(run, "Failed"))
    monkeypatch.setattr("cli.context.lifecycle", lambda: world.life)
    monkeypatch.delenv("AUTOPILOT_URL", raising=False)
    assert main(["retry", run.run_id]) == 0
    assert world.get(run.run_id).attempt == 2 and "retry accepted" in capsys.readouterr().out


def test_status_columns_line_up_and_cuts_are_marked() -> None:
    runs = [{"run_id": "run-0123456789ab-abcdef", "state": "rolled_back",
             "upload": {"blob": "incoming/" + "deep/" * 12 + "chats.jsonl"},
             "model": {"name": "ft-SmolLM2-135M-Instruct-" + "x" * 40, "version": "12"}},
            {"run_id": "rej-0123456789abcdef", "state": "rejected", "upload": {"blob": "incoming/a.jsonl"}},
            {"run_id": "wait-0123456789abcdef", "state": "waiting",
             "upload": {"blob": "incoming/m.manifest.json"}}]
    lines = status_text({"runs": runs, "endpoints": [], "alerts": []}).splitlines()[:4]
    starts = {line.index(state) for line, state in zip(lines, ["STATE", "rolled_back", "rejected", "waiting"],
                                                         strict=True)}
    assert len(starts) == 1, lines
    assert " …" in lines[1] and "/deep/chats.jsonl " in lines[1] and ":12" in lines[1]
    assert lines[1].count("…") == 2
    uploads = {line.index("incoming") if "incoming" in line else line.index("…") for line in lines[1:]}
    assert len(uploads) == 1, lines


def test_the_redeploy_refusal_names_every_state_it_accepts(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="2")
    live = world.live_run()
    with pytest.raises(IllegalTransition) as refused:
        world.life.redeploy(live)
    accepted = ("superseded", "torn_down", "rolled_back", "unhealthy")
    assert all(state in str(refused.value) for state in accepted)


def test_an_empty_upload_s_alert_has_no_line_none(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    world.life.on_upload(world.drop("empty.jsonl", b""))
    sent = [json.loads(line) for line in (world.settings.data_dir / "alerts.jsonl").read_text().splitlines()]
    assert [a["alert_class"] for a in sent] == ["upload.rejected"]
    assert "line None" not in sent[0]["summary"], sent[0]["summary"]


def test_an_endpoint_refusal_is_its_message_not_escaped_json() -> None:
    from shared.platforms.local.endpoints import refusal

    said = "messages must be a non-empty list"
    body = {"detail": said, "error": {"message": said, "type": "invalid_request_error", "code": None}}
    assert refusal(httpx.Response(422, json=body)) == said
    assert refusal(httpx.Response(422, json={"detail": said})) == said
    assert refusal(httpx.Response(502, text="Bad Gateway")) == "Bad Gateway"


def test_an_empty_messages_list_gets_a_sentence_not_pydantic_s_list() -> None:
    from fastapi.testclient import TestClient

    from engine.serve.model_server import build_app

    app = build_app(object(), "k" * 32, object(), "blue")  # type: ignore[arg-type]  # never reached
    client = TestClient(app)
    for path in ("/v1/chat/completions", "/score"):
        response = client.post(path, json={"messages": []}, headers={"Authorization": f"Bearer {'k' * 32}"})
        assert response.status_code == 422
        message = response.json()["error"]["message"]
        assert isinstance(message, str) and message.startswith("messages must be a non-empty list"), message


def test_a_huge_run_id_is_not_found_without_asking_the_storage(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)

    def too_long(kind: str, key: str) -> None:  # Table Storage answers 431 for such a key
        raise StoreError("table storage refused to read: 431 Request Header Fields Too Large")

    world.ledger.store.get = too_long  # type: ignore[method-assign, assignment]
    with pytest.raises(ops.RunNotFound) as missing:
        ops.find_run(world.life, "x" * 20_000)
    assert len(str(missing.value)) < 200


def test_a_unicode_file_name_keeps_a_recognisable_model_name() -> None:
    name = naming.model_name("tiny-random", "dir with space/ünï 😀.jsonl")
    assert name.startswith("ft-tiny-random-uni-") and len(name) > len("ft-tiny-random-uni-")
    assert name != naming.model_name("tiny-random", "dir with space/ünï 😃.jsonl")
    assert naming.model_name("Phi-4", "team/chats.jsonl") == "ft-Phi-4-chats"


class socket_closed_port:
    """A loopback port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])

    def __exit__(self, *_: object) -> None:
        pass



def test_endpoint_credentials_show_what_the_platform_port_says_and_never_the_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI asks the port (no platform of its own in mind): URL and hint shown, the key only fetched."""
    world = MemoryWorld(tmp_path)
    live = world.live_run()
    assert live.endpoint is not None
    monkeypatch.setattr("cli.context.lifecycle", lambda: world.life)
    assert main(["endpoint", "credentials", "--endpoint", live.endpoint]) == 0
    shown = capsys.readouterr()
    access = world.platform.endpoint_access(live.endpoint)
    assert access.scoring_uri in shown.out and access.key_hint in shown.out
    assert access.key not in shown.out + shown.err
