"""Prints the alerts the local alert sink appends to `<data dir>/alerts.jsonl`, one readable line each."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from devhost.polling import Poller

log = logging.getLogger("devhost.alerts")

# Envelope fields that say nothing to a person reading the console.
_NOISE = {"id", "specversion", "datacontenttype", "dataschema", "source", "time", "eventTime", "topic", "at"}


def describe(alert: Any) -> str:
    """One line for an alert, whatever its shape: kind, severity, message, then the remaining fields."""
    if not isinstance(alert, dict):
        return f"ALERT {alert}"
    # The local sink writes {run_id, alert_class, severity, summary, details}; CloudEvents nest in "data".
    nested = [alert[k] for k in ("data", "details") if isinstance(alert.get(k), dict)]
    fields = {k: v for k, v in alert.items() if k not in ("data", "details")}
    for inner in nested:
        fields.update(inner)
    kind = (fields.pop("alert_class", None) or fields.pop("type", None) or fields.pop("eventType", None)
            or fields.pop("kind", None) or "alert")
    severity = fields.pop("severity", None) or fields.pop("level", None)
    message = fields.pop("message", None) or fields.pop("summary", None) or fields.pop("title", None)
    rest = " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}"
                    for k, v in fields.items() if k not in _NOISE and v not in (None, "", {}, []))
    head = f"ALERT [{severity}] {kind}" if severity else f"ALERT {kind}"
    return " — ".join(part for part in (head, str(message) if message else "", rest) if part)


class AlertTail(Poller):
    """Follows the alerts file from its end at start, printing each alert appended afterwards."""

    name = "alerts"

    def __init__(self, path: Path, *, interval: float = 1.0) -> None:
        super().__init__(interval)
        self.path = path
        self._offset = path.stat().st_size if path.exists() else 0
        self._partial = b""

    def poll(self) -> None:
        """Read what was appended since the last poll; print the complete lines."""
        if not self.path.exists():
            self._offset, self._partial = 0, b""
            return
        size = self.path.stat().st_size
        if size < self._offset:  # truncated or replaced: start over
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return
        with self.path.open("rb") as alerts:
            alerts.seek(self._offset)
            chunk = alerts.read(size - self._offset)
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                self._print(line)

    def _print(self, line: bytes) -> None:
        try:
            alert = json.loads(line)
        except ValueError:
            log.warning("ALERT (not JSON) %s", line.decode(errors="replace")[:500])
            return
        log.warning("%s", describe(alert))
