"""Alerts to people: CloudEvents to an Event Grid topic and/or a webhook POST; locally a JSONL sink.

Exactly once per run and class is the ledger's job (`Ledger.mark_alerted`); the alert's id is derived from
run and class, so a receiver can drop a repeat too. Sending never blocks the lifecycle: a failing sink is
retried a few times, logged, and given up on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from tenacity import retry, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Alert:
    """One thing a person should know about a run."""

    run_id: str
    alert_class: str  # e.g. upload.rejected, job.failed, deploy.failed, endpoint.torn_down
    severity: Severity
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def id(self) -> str:
        # A later attempt's alert of the same class is another alert: receivers that drop repeated ids
        # (CloudEvents, webhooks) must not drop it.
        return f"{self.run_id}:{self.details.get('alert_key') or self.alert_class}"

    @property
    def event_type(self) -> str:
        return f"FineTuneAutopilot.{self.alert_class}"


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None: ...


class JsonlAlertSink:
    """Appends alerts as JSON lines to a file (the local default; the devhost prints them as they arrive)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"id": alert.id, **asdict(alert)}, default=str)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every alert written so far, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]


class EventGridSink:
    """Publishes each alert as a CloudEvent to an Event Grid topic (key or Entra ID auth)."""

    def __init__(self, endpoint: str, key: str | None) -> None:
        from azure.eventgrid import EventGridPublisherClient

        credential: Any
        if key:
            from azure.core.credentials import AzureKeyCredential

            credential = AzureKeyCredential(key)
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        self._client = EventGridPublisherClient(endpoint, credential)

    def send(self, alert: Alert) -> None:
        from azure.core.messaging import CloudEvent

        self._client.send(CloudEvent(source="/finetune-autopilot", type=alert.event_type, id=alert.id,
                                     subject=f"runs/{alert.run_id}", data=asdict(alert)))


class WebhookSink:
    """POSTs a Teams/Slack-compatible `{"text": ..., "alert": ...}` body to a webhook URL; with a secret,
    signed as Standard Webhooks does (`webhook-id`, `webhook-timestamp`, `webhook-signature`), so a
    receiver can tell our alerts from anyone's. Slack and Teams ignore the headers and show `text`."""

    def __init__(self, url: str, secret: str | None = None, *, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self._key = webhook_key(secret) if secret else None
        self._client = httpx.Client(transport=transport, timeout=10)
        self._clock = clock

    def __repr__(self) -> str:  # neither the URL (Slack's holds a token) nor the key
        return f"WebhookSink(signed={self._key is not None})"

    def send(self, alert: Alert) -> None:
        text = f"[{alert.severity.upper()}] run {alert.run_id}: {alert.summary}"
        body = json.dumps({"text": text, "alert": asdict(alert)}, default=str).encode()
        headers = {"content-type": "application/json"}
        if self._key is not None:
            headers.update(signature_headers(self._key, alert.id, int(self._clock()), body))
        response = self._client.post(self.url, content=body, headers=headers)
        response.raise_for_status()


SECRET_PREFIX = "whsec_"


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (`whsec_` + base64 of 24 to 64 random bytes). The error
    never repeats the secret."""
    if secret.strip().startswith("@Microsoft.KeyVault("):  # the platform could not resolve the reference
        raise ValueError("ALERT_WEBHOOK_SECRET is a Key Vault reference the platform could not resolve: "
                         "check that the secret exists and the app's identity has Key Vault Secrets User on "
                         "the vault")
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("ALERT_WEBHOOK_SECRET is not whsec_ followed by base64; make one with "
                         "`python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(32))"
                         ".decode())\"`") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"ALERT_WEBHOOK_SECRET holds {len(key)} bytes; Standard Webhooks secrets hold 24 "
                         "to 64 random bytes (32 is usual)")
    return key


def signature_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks' headers: `webhook-signature` is `v1,` + base64 of HMAC-SHA256 over
    "id.timestamp.body"."""
    signed = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(signed).decode()}


class AlertHistory(Protocol):
    def read(self) -> list[dict[str, Any]]: ...


class Alerts:
    """Fans an alert out to every configured sink; failures are retried, then logged, never raised.

    `kept` is the sink, if any, that keeps the alerts it was sent where the app can read them back (the
    local JSONL file): the status page shows them through `recent`, whatever the sinks are."""

    def __init__(self, sinks: Sequence[AlertSink], kept: AlertHistory | None = None) -> None:
        self.sinks = list(sinks)
        self.kept = kept

    def recent(self, limit: int | None) -> list[dict[str, Any]] | None:
        """The newest `limit` alerts kept (all: None), newest first; None when no sink keeps them."""
        if self.kept is None:
            return None
        found = sorted(self.kept.read(), key=lambda a: str(a.get("at", "")), reverse=True)
        return found if limit is None else found[:limit]

    def send(self, alert: Alert) -> None:
        log.log(logging.INFO if alert.severity == "info" else logging.WARNING,
                "alert %s: %s", alert.id, alert.summary)
        for sink in self.sinks:
            try:
                _send_with_retry(sink, alert)
            except Exception as exc:  # a broken sink must not stop the lifecycle
                log.error("alert %s could not be sent via %s: %s", alert.id, type(sink).__name__,
                          type(exc).__name__)


@retry(stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.2, max=2), reraise=True)
def _send_with_retry(sink: AlertSink, alert: Alert) -> None:
    sink.send(alert)
