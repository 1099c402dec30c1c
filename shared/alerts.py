"""Alerts to people: CloudEvents to an Event Grid topic and/or a webhook POST; locally a JSONL sink.

Exactly once per run and class is the ledger's job (`Ledger.mark_alerted`); the alert's id is derived from
run and class, so a receiver can drop a repeat too. Sending never blocks the lifecycle: a failing sink is
retried a few times, logged, and given up on.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

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
    """POSTs a Teams/Slack-compatible `{"text": ...}` body to a webhook URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, alert: Alert) -> None:
        import httpx

        text = f"[{alert.severity.upper()}] run {alert.run_id}: {alert.summary}"
        response = httpx.post(self.url, json={"text": text, "alert": asdict(alert)}, timeout=10)
        response.raise_for_status()


class Alerts:
    """Fans an alert out to every configured sink; failures are retried, then logged, never raised."""

    def __init__(self, sinks: Sequence[AlertSink]) -> None:
        self.sinks = list(sinks)

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
