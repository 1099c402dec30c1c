"""One log call, one record in Application Insights: the app's logs take one pipeline.

Microsoft's OpenTelemetry-for-Functions guidance for Python: host.json `telemetryMode: OpenTelemetry`,
`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true` (the Python worker then configures the Azure Monitor
distro itself, on the root logger, and declares `WorkerOpenTelemetryEnabled`, so the host stops relaying the
worker's log lines) and azure-monitor-opentelemetry in requirements.txt. The app must then add neither a
second exporter nor a stderr handler: the host captures the worker's stderr as console logs, a second copy.

Azure Monitor itself cannot run here: `configure_azure_monitor` is replaced at that boundary by a stand-in
that does what the distro does to logging (one exporting handler on the named logger, none if it has one).
The set-up under test is the devhost's own: `functions.worker`'s build calls `configure_logging()`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from functions import worker
from shared import observability
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONNECTION = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://x.invalid/"


class Exported(logging.Handler):
    """The records the (stand-in) Azure Monitor exporter would send."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def azure_monitor(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Exported]]:
    """The distro at its boundary; yields the exporting handlers it has attached."""
    exporters: list[Exported] = []

    def configure_azure_monitor(*, connection_string: str, logger_name: str = "") -> None:
        assert connection_string == CONNECTION
        logger = logging.getLogger(logger_name)
        if not any(isinstance(h, Exported) for h in logger.handlers):  # the distro's own guard
            exporters.append(Exported())
            logger.addHandler(exporters[-1])

    distro = types.ModuleType("azure.monitor.opentelemetry")
    distro.configure_azure_monitor = configure_azure_monitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", distro)
    monkeypatch.setattr(observability, "_exporter_configured", False, raising=False)
    root = logging.getLogger()
    handlers, filters = list(root.handlers), {h: list(h.filters) for h in root.handlers}
    try:
        yield exporters
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler, kept in filters.items():
            handler.filters[:] = kept


def set_up_as_the_devhost_does(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The function app's first invocations: 8 threads ask for the lifecycle; its build sets up logging."""
    for key in ("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "APPLICATIONINSIGHTS_CONNECTION_STRING",
                "AUTOPILOT_LOG_FORMAT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(worker, "build_lifecycle", lambda settings: object())
    monkeypatch.setattr(Settings, "from_env", classmethod(lambda cls, env=None: object()))
    worker.lifecycle.cache_clear()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda _: worker.lifecycle(), range(8)))
        observability.configure_logging()  # and a second set-up (a process that builds twice) adds nothing
    finally:
        worker.lifecycle.cache_clear()


def records_of_one_log_call(exporters: list[Exported], capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    capsys.readouterr()
    logging.getLogger("shared.lifecycle").warning("run %s: deployment failed", "run-one-record")
    json_lines = [line for line in capsys.readouterr().err.splitlines()
                  if line.startswith("{") and "run-one-record" in json.loads(line)["message"]]
    return {"exported": sum(len([r for r in e.records if "run-one-record" in r.getMessage()])
                            for e in exporters), "stderr json lines": len(json_lines)}


def test_on_azure_the_worker_exports_and_the_app_adds_no_second_path(
        azure_monitor: list[Exported], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = {"PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true", "APPLICATIONINSIGHTS_CONNECTION_STRING":
           CONNECTION, "AUTOPILOT_LOG_FORMAT": "json"}  # the last as the Bicep used to set it
    # The Python worker, at its init request, before it indexes function_app.py:
    sys.modules["azure.monitor.opentelemetry"].configure_azure_monitor(  # type: ignore[attr-defined]
        connection_string=CONNECTION, logger_name="")
    set_up_as_the_devhost_does(monkeypatch, env)
    assert records_of_one_log_call(azure_monitor, capsys) == {"exported": 1, "stderr json lines": 0}
    assert observability.log_pipeline(env) == "worker"


def test_on_the_devhost_with_app_insights_one_exporter_and_no_json_copy(
        azure_monitor: list[Exported], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    set_up_as_the_devhost_does(monkeypatch, {"APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION,
                                             "AUTOPILOT_LOG_FORMAT": "json"})
    assert records_of_one_log_call(azure_monitor, capsys) == {"exported": 1, "stderr json lines": 0}


def test_without_app_insights_json_lines_are_the_one_pipeline(
        azure_monitor: list[Exported], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    set_up_as_the_devhost_does(monkeypatch, {"AUTOPILOT_LOG_FORMAT": "json"})
    assert records_of_one_log_call(azure_monitor, capsys) == {"exported": 0, "stderr json lines": 1}


def test_the_deployment_follows_the_guidance() -> None:
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["telemetryMode"] == "OpenTelemetry"
    function_app = (ROOT / "infra" / "modules" / "functionapp.bicep").read_text(encoding="utf-8")
    assert re.search(r"^\s*PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'", function_app, flags=re.M)
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString" in function_app
    main = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
    assert "AUTOPILOT_LOG_FORMAT" not in main  # a JSON stderr copy would come back through the host
    assert re.search(r"^azure-monitor-opentelemetry==", (ROOT / "requirements.txt").read_text(), flags=re.M)
