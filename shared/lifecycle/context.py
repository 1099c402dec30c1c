"""What every lifecycle step works with: settings and the ports (platform, ledger, alerts, blobs)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.storage.blob import BlobServiceClient
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from shared.alerts import Alert, Alerts, Severity
from shared.ledger import Ledger, Run
from shared.platforms.port import Platform, PlatformError
from shared.settings import Settings

log = logging.getLogger("autopilot.lifecycle")
T = TypeVar("T")


@dataclass
class Context:
    settings: Settings
    platform: Platform
    ledger: Ledger
    alerts: Alerts
    blobs: BlobServiceClient

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the platform, retrying transient failures (429, 5xx, timeouts) with backoff."""
        return _transient_retry(fn)(*args, **kwargs)

    def alert(self, run: Run, alert_class: str, severity: Severity, summary: str, **details: Any) -> None:
        """Send the alert of this class for this run once, however many handlers reach this point."""
        if self.ledger.mark_alerted(run, alert_class) is None:
            log.debug("alert %s for run %s was already sent", alert_class, run.run_id)
            return
        self.alerts.send(Alert(run.run_id, alert_class, severity, summary, details))


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, PlatformError) and exc.transient


def _transient_retry(fn: Callable[..., T]) -> Callable[..., T]:
    return retry(retry=retry_if_exception(_is_transient), stop=stop_after_attempt(4),
                 wait=wait_exponential(multiplier=0.5, max=8), reraise=True)(fn)
