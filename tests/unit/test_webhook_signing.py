"""Webhook alerts signed as Standard Webhooks does, checked by its reference verifier (`standardwebhooks`),
over httpx's own in-memory transport (the request is the one the client would put on the wire)."""

from __future__ import annotations

import base64
import json
import logging
import os
import time

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from shared.alerts import Alert, Alerts, WebhookSink
from shared.azurite import DEVELOPMENT_STORAGE
from shared.settings import Settings, SettingsError
from shared.wiring import build_alerts

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
ALERT = Alert("run-1", "job.failed", "error", "fine-tune job ftap-run-1 ended Failed")


def capture(status: int = 200) -> tuple[list[httpx.Request], httpx.MockTransport]:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status)

    return sent, httpx.MockTransport(answer)


def test_the_reference_library_verifies_what_we_send_and_slack_still_reads_text() -> None:
    sent, transport = capture()
    WebhookSink("https://hooks.example/alerts", SECRET, transport=transport).send(ALERT)
    (request,) = sent
    payload = Webhook(SECRET).verify(request.content, dict(request.headers))
    assert payload["text"] == "[ERROR] run run-1: fine-tune job ftap-run-1 ended Failed"
    assert payload["alert"]["alert_class"] == "job.failed"
    assert request.headers["webhook-id"] == ALERT.id  # the same on a resend: receivers drop repeats
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")


def test_a_tampered_body_another_secret_or_an_old_timestamp_fails_verification() -> None:
    sent, transport = capture()
    WebhookSink("https://hooks.example/alerts", SECRET, transport=transport).send(ALERT)
    stale, old = capture()
    ten_minutes_ago = lambda: time.time() - 600  # noqa: E731
    WebhookSink("https://hooks.example/alerts", SECRET, transport=old, clock=ten_minutes_ago).send(ALERT)
    (request,), (late,) = sent, stale
    headers = dict(request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.content.replace(b"Failed", b"Succeeded"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(os.urandom(32)).decode()).verify(request.content, headers)
    with pytest.raises(WebhookVerificationError):  # receivers allow 5 minutes of skew
        Webhook(SECRET).verify(late.content, dict(late.headers))


def test_without_a_secret_the_post_is_plain_as_before() -> None:
    sent, transport = capture()
    WebhookSink("https://hooks.example/alerts", transport=transport).send(ALERT)
    (request,) = sent
    assert "webhook-signature" not in request.headers
    assert json.loads(request.content)["text"].startswith("[ERROR] run run-1")


def test_the_secret_comes_from_its_setting_and_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    env = {"AUTOPILOT_STORAGE": DEVELOPMENT_STORAGE, "ALERT_WEBHOOK_URL": "https://hooks.example/alerts",
           "ALERT_WEBHOOK_SECRET": SECRET}
    settings = Settings.from_env(env)
    assert settings.alert_webhook_secret == SECRET and SECRET not in repr(settings)
    assert "hooks.example" not in repr(settings)
    (sink,) = [s for s in build_alerts(settings).sinks if isinstance(s, WebhookSink)]
    assert SECRET not in repr(sink) and "hooks.example" not in repr(sink)
    sent, transport = capture(status=500)
    failing = WebhookSink("https://hooks.example/alerts", SECRET, transport=transport)
    with caplog.at_level(logging.DEBUG):
        Alerts([failing]).send(ALERT)  # retried, then logged and given up
    assert len(sent) == 3
    key = SECRET.removeprefix("whsec_")
    assert not [r for r in caplog.records if key in r.getMessage() or SECRET in r.getMessage()]


@pytest.mark.parametrize("bad", ["not-a-secret!", "whsec_" + base64.b64encode(b"short").decode(),
                                 "@Microsoft.KeyVault(VaultName=kv;SecretName=alert-webhook-secret)"])
def test_a_malformed_secret_is_refused_at_start_without_echoing_it(bad: str) -> None:
    with pytest.raises(SettingsError, match="ALERT_WEBHOOK_SECRET") as refused:
        Settings.from_env({"AUTOPILOT_STORAGE": DEVELOPMENT_STORAGE, "ALERT_WEBHOOK_SECRET": bad})
    assert bad.removeprefix("whsec_") not in str(refused.value)
