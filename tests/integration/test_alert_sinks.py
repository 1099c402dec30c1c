"""Alert sinks against a real HTTP receiver on loopback: Event Grid CloudEvents and a webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.alerts import Alert, Alerts, EventGridSink, WebhookSink


class Receiver:
    """A loopback HTTP server that records each POST and answers with `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.bodies: list[bytes] = []  # as received, for signature checks
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.bodies.append(body)
                receiver.requests.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


ALERT = Alert("run-1", "job.failed", "error", "fine-tune job ftap-run-1 ended Failed")


def test_event_grid_sink_publishes_a_cloudevent_with_a_stable_id(receiver: Receiver) -> None:
    EventGridSink(f"{receiver.url}/api/events", "topic-key").send(ALERT)
    ((path, headers, body),) = receiver.requests
    assert path.startswith("/api/events") and headers["aeg-sas-key"] == "topic-key"
    (event,) = body
    assert event["id"] == "run-1:job.failed" and event["type"] == "FineTuneAutopilot.job.failed"
    assert event["specversion"] == "1.0" and event["data"]["summary"] == ALERT.summary


def test_webhook_sink_posts_a_teams_and_slack_readable_text(receiver: Receiver) -> None:
    WebhookSink(f"{receiver.url}/hook").send(ALERT)
    ((_, _, body),) = receiver.requests
    assert body["text"] == "[ERROR] run run-1: fine-tune job ftap-run-1 ended Failed"


def test_a_signed_webhook_is_verified_by_the_standard_webhooks_library(receiver: Receiver) -> None:
    import base64
    import os

    from standardwebhooks import Webhook

    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    WebhookSink(f"{receiver.url}/hook", secret).send(ALERT)
    ((_, headers, body),), (raw,) = receiver.requests, receiver.bodies
    assert Webhook(secret).verify(raw, headers)["text"] == body["text"]


def test_a_failing_sink_is_retried_then_given_up_without_raising(receiver: Receiver) -> None:
    receiver.status = 500
    delivered: list[Alert] = []

    class Recorder:
        def send(self, alert: Alert) -> None:
            delivered.append(alert)

    Alerts([WebhookSink(f"{receiver.url}/hook"), Recorder()]).send(ALERT)
    assert len(receiver.requests) == 3  # tried three times
    assert delivered == [ALERT]  # the next sink still got it
