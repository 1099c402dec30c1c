"""Logs an operator can follow: every line of a run's handling carries its run id and job id, nothing logged
holds a secret, and each record reaches Application Insights once, by one OpenTelemetry pipeline (on Azure
the Functions Python worker's Azure Monitor distro; see `log_pipeline`).

The ids live in context variables, so a handler sets them once and every logger below it (the lifecycle, the
platform adapters, the SDKs) stamps them on its records; each trigger invocation runs in its own context.

    configure_logging()                 # once per process, at import of the function app
    with handling(job_id=event.run_id):  # once per trigger invocation
        ...
        bind(run_id=run.run_id, job_id=run.job_name)   # as soon as the run is known
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

RUN_ID: contextvars.ContextVar[str] = contextvars.ContextVar("autopilot_run_id", default="")
JOB_ID: contextvars.ContextVar[str] = contextvars.ContextVar("autopilot_job_id", default="")

REDACTED = "***"
# What a secret looks like in a log line: SAS signatures, account keys in connection strings, bearer tokens,
# function keys in URLs, and key/secret/token/password values in key=value or JSON form.
_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(sig=)[^&\s\"'<>]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(?i)\b(AccountKey=|SharedAccessKey=|SharedAccessSignature=)[^;\s\"'<>]+"),
     rf"\g<1>{REDACTED}"),
    (re.compile(r"(?i)\b(Bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(?i)([?&](?:code|key|sig|token|api[-_]?key)=)[^&\s\"'<>]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(?i)\b((?:api[-_]?key|access[-_]?key|primary[-_]?key|secondary[-_]?key|client[-_]?secret"
                r"|password|secret|token|x-functions-key|aeg-sas-key|aeg-sas-token|ocp-apim-subscription-key)"
                r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"), rf"\g<1>{REDACTED}"),
)


def redact(text: str) -> str:
    """`text` with every secret-looking value replaced by ***."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def bind(run_id: str | None = None, job_id: str | None = None) -> None:
    """Stamp the given ids on every log record from here to the end of the current handling."""
    if run_id:
        RUN_ID.set(run_id)
    if job_id:
        JOB_ID.set(job_id)


def bind_run(run: Any) -> None:
    """`bind` from anything with `run_id` and `job_name` (a ledger Run)."""
    bind(str(getattr(run, "run_id", "") or ""), str(getattr(run, "job_name", "") or ""))


@contextmanager
def handling(run_id: str = "", job_id: str = "") -> Iterator[None]:
    """One trigger invocation: starts with the given ids (or none) and forgets them on the way out."""
    tokens = (RUN_ID.set(run_id), JOB_ID.set(job_id))
    try:
        yield
    finally:
        RUN_ID.reset(tokens[0])
        JOB_ID.reset(tokens[1])


class RunContextFilter(logging.Filter):
    """Adds `run_id` and `job_id` to a record (for handlers that do not go through the record factory)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _stamp(record)
        return True


class RedactionFilter(logging.Filter):
    """Rewrites a record's message (and cached traceback text) with secrets replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, run_id, job_id, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        _stamp(record)
        _scrub(record)
        entry: dict[str, Any] = {"time": self.formatTime(record), "level": record.levelname,
                                 "logger": record.name, "run_id": getattr(record, "run_id", ""),
                                 "job_id": getattr(record, "job_id", ""), "message": record.getMessage()}
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exception"] = redact(record.exc_text)
        return json.dumps(entry, default=str)


def _stamp(record: logging.LogRecord) -> None:
    if not getattr(record, "run_id", ""):
        record.run_id = RUN_ID.get()
    if not getattr(record, "job_id", ""):
        record.job_id = JOB_ID.get()


def _scrub(record: logging.LogRecord) -> None:
    if getattr(record, "_autopilot_scrubbed", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a malformed format string: leave it to logging's own error report
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        # The exporter and formatters render the exception from exc_info; pre-render it redacted.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        text = str(record.exc_info[1])
        if redact(text) != text:
            record.exc_info = None
    record._autopilot_scrubbed = True


_installed = False


def install_record_factory() -> None:
    """Stamp ids and redact secrets on every record the process creates, whichever handler gets it."""
    global _installed
    if _installed:
        return
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _stamp(record)
        _scrub(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


# On Azure Functions the Python worker configures the Azure Monitor distro itself when this app setting is
# true (Microsoft's OpenTelemetry-for-Functions guidance, with host.json `telemetryMode: OpenTelemetry`),
# and tells the host not to relay the worker's log lines too (capability WorkerOpenTelemetryEnabled).
WORKER_EXPORTS = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
_setup = threading.Lock()
_exporter_configured = False


def log_pipeline(env: Mapping[str, str]) -> str:
    """Where this process's records go, one way only:

    - "worker": the Functions Python worker exports them (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true);
      we add no handler (a JSON line on stderr would come back as a second record, from the host's console
      capture) and no second exporter;
    - "azure-monitor": a process that is no Functions worker (devhost, CLI) with
      APPLICATIONINSIGHTS_CONNECTION_STRING set exports them itself, once;
    - "json": JSON lines on stderr (AUTOPILOT_LOG_FORMAT=json), for a log collector that reads them;
    - "default": whatever handlers the process has (the devhost's console).
    """
    if _true(env.get(WORKER_EXPORTS, "")):
        return "worker"
    if env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip():
        return "azure-monitor"
    if env.get("AUTOPILOT_LOG_FORMAT", "").strip().lower() == "json":
        return "json"
    return "default"


def _true(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes")


def configure_logging(env: Mapping[str, str] | None = None) -> bool:
    """Set up the process's logging once (safe from several threads): ids and redaction on every record, and
    one pipeline to where the records are read (`log_pipeline`).

    Returns whether the records go to Application Insights (by the worker or by this process).
    """
    e = os.environ if env is None else env
    pipeline = log_pipeline(e)
    with _setup:
        install_record_factory()
        root = logging.getLogger()
        if pipeline == "json" and not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
            lines = logging.StreamHandler()
            lines.setFormatter(JsonFormatter())
            root.addHandler(lines)
        for handler in root.handlers:
            if not any(isinstance(f, RedactionFilter) for f in handler.filters):
                handler.addFilter(RunContextFilter())
                handler.addFilter(RedactionFilter())
        if pipeline == "worker":
            return True
        if pipeline != "azure-monitor":
            return False
        return _configure_azure_monitor(e["APPLICATIONINSIGHTS_CONNECTION_STRING"].strip())


def _configure_azure_monitor(connection: str) -> bool:
    global _exporter_configured
    if _exporter_configured:  # a second distro set-up would export every record again
        return True
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
    except ImportError:
        logging.getLogger(__name__).warning("APPLICATIONINSIGHTS_CONNECTION_STRING is set but "
                                            "azure-monitor-opentelemetry is not installed; no export")
        return False
    # The exporter turns a record's extra attributes (run_id, job_id) into customDimensions.
    configure_azure_monitor(connection_string=connection, logger_name="")
    _exporter_configured = True
    return True
