"""Structured logs: run and job ids on every line of a handling, no secret in any line, export to
Application Insights."""

from __future__ import annotations

import json
import logging
import sys
import types

import pytest

from shared import observability
from shared.observability import JsonFormatter, bind, bind_run, handling, redact

SECRETS = {
    "https://acct.blob.core.windows.net/staged/a.jsonl?sv=2024-08-04&se=2026&sp=r&sig=AbC%2Fd3f%3D": "sig=",
    "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9vYmFyYmF6cXV4==;x=y": "AccountKey=",
    "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln": "Bearer ",
    "https://func.azurewebsites.net/runtime/webhooks/blobs?functionName=x&code=s3cr3tK3y==": "code=",
    '{"primaryKey": "k3yk3yk3y", "name": "ok"}': '"primaryKey": "',
    "api_key=sk-live-123456 next": "api_key=",
}


@pytest.mark.parametrize("text", list(SECRETS))
def test_redact_hides_every_kind_of_secret(text: str) -> None:
    clean = redact(text)
    secret = text.split(SECRETS[text], 1)[1][:6]
    assert secret not in clean and "***" in clean


def test_redact_leaves_ordinary_lines_alone() -> None:
    line = "run run-abc: submitted job ftap-run-abc (48 rows, key autopilot-run-id)"
    assert redact(line) == line


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc else None
    return logging.LogRecord("autopilot.lifecycle", logging.INFO, __file__, 1, message, args, exc_info)


def test_each_line_of_a_handling_carries_its_run_and_job_id() -> None:
    formatter = JsonFormatter()
    before = json.loads(formatter.format(record("previous handling")))
    with handling(job_id="ftap-run-1"):
        first = json.loads(formatter.format(record("event for %s", "ftap-run-1")))
        bind_run(types.SimpleNamespace(run_id="run-1", job_name="ftap-run-1"))
        second = json.loads(formatter.format(record("registered")))
    after = json.loads(formatter.format(record("next handling")))
    assert (first["run_id"], first["job_id"]) == ("", "ftap-run-1")
    assert (second["run_id"], second["job_id"]) == ("run-1", "ftap-run-1")
    # Leaving the handling restores whatever was bound before it (nothing, in a fresh worker thread).
    assert (after["run_id"], after["job_id"]) == (before["run_id"], before["job_id"])


def test_a_json_line_never_holds_a_secret_in_its_message_or_exception() -> None:
    with handling(run_id="run-2"):
        bind(job_id="job-2")
        try:
            raise RuntimeError("upload failed for https://a/b?sig=TOPSECRETSIG&sp=r")
        except RuntimeError as exc:
            line = JsonFormatter().format(record("could not read %s", "AccountKey=TOPSECRETKEY;", exc=exc))
    assert "TOPSECRET" not in line
    entry = json.loads(line)
    assert entry["run_id"] == "run-2" and "sig=***" in entry["exception"]


def test_the_record_factory_scrubs_records_for_every_handler(caplog: pytest.LogCaptureFixture) -> None:
    observability.install_record_factory()
    with handling(run_id="run-3", job_id="job-3"), caplog.at_level(logging.INFO):
        logging.getLogger("azure.core").info("GET %s", "https://x/y?se=1&sig=SECRETSIG")
    (captured,) = [r for r in caplog.records if r.name == "azure.core"]
    assert "SECRETSIG" not in captured.getMessage() and captured.run_id == "run-3"  # type: ignore[attr-defined]


def test_app_insights_export_only_with_a_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []
    fake = types.ModuleType("azure.monitor.opentelemetry")
    fake.configure_azure_monitor = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", fake)
    monkeypatch.setattr(observability, "_exporter_configured", False)  # as in a fresh process
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        assert observability.configure_logging({}) is False and calls == []
        connection = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://x/"
        assert observability.configure_logging({"APPLICATIONINSIGHTS_CONNECTION_STRING": connection}) is True
        assert calls == [{"connection_string": connection, "logger_name": ""}]
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
