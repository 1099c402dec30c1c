"""The composition root: settings in, a Lifecycle over the configured adapters and stores out.

The only module that knows every concrete adapter; everything else sees the ports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.alerts import Alerts, AlertSink, EventGridSink, JsonlAlertSink, WebhookSink
from shared.lifecycle import Lifecycle
from shared.platforms.port import Platform
from shared.queues import MessageQueue
from shared.queues.storage_queue import StorageQueue
from shared.runs import Ledger
from shared.runs.table import TableRowStore
from shared.settings import Settings, StorageSettings
from shared.staging import BlobStore
from shared.staging.azure_blob import AzureBlobStore
from shared.storage import blob_service, queue_client, table_service


def build_platform(settings: Settings) -> tuple[Platform, Callable[[], None] | None]:
    """The platform adapter the settings name, and what stops its processes on this machine (if any).

    The local engine's heavy imports stay out of Azure.
    """
    if settings.platform == "azureml":
        from shared.platforms.azureml import AzureMLPlatform

        return AzureMLPlatform(settings), None
    from shared.platforms.local import LocalPlatform

    local = LocalPlatform(settings)
    return local, local.stop_all


def platform_location(settings: Settings) -> str:
    """Where the configured platform keeps its endpoints, so a message about a missing one shows a wrong
    AUTOPILOT_DATA_DIR or workspace."""
    if settings.platform == "azureml" and settings.azureml is not None:
        return f"Azure ML workspace {settings.azureml.workspace}"
    return f"the local engine's data directory {settings.data_dir} (AUTOPILOT_DATA_DIR)"


def azure_preflight(settings: Settings, platform: Any = None) -> list[Any]:
    """`autopilot check-azure`: the Azure ML adapter's read-only pre-flight checks (name, ok, detail)."""
    from shared.platforms.azureml import AzureMLPlatform
    from shared.platforms.azureml.preflight import preflight

    return preflight(platform if platform is not None else AzureMLPlatform(settings))


def build_alerts(settings: Settings) -> Alerts:
    """The alert sinks the settings name; locally (or with none set) also the JSONL file."""
    sinks: list[AlertSink] = []
    if settings.alert_topic_endpoint:
        sinks.append(EventGridSink(settings.alert_topic_endpoint, settings.alert_topic_key))
    if settings.alert_webhook_url:
        sinks.append(WebhookSink(settings.alert_webhook_url, settings.alert_webhook_secret))
    kept = None
    if settings.platform == "local" or not sinks:
        kept = JsonlAlertSink(settings.data_dir / "alerts.jsonl")
        sinks.append(kept)
    return Alerts(sinks, kept=kept)


def build_queue(storage: StorageSettings, name: str) -> MessageQueue:
    """A queue of the storage account, its text base64-encoded as the Functions queue trigger reads it."""
    return StorageQueue(queue_client(storage, name, base64=True))


def build_lifecycle(settings: Settings, platform: Platform | None = None, *, ledger: Ledger | None = None,
                    staging: BlobStore | None = None, steps: MessageQueue | None = None) -> Lifecycle:
    """Wire the lifecycle. Tests pass their own platform (the in-memory one, the Azure ML fake), and for
    millisecond runs a ledger over the in-memory row store, the in-memory staging and step queue; the
    defaults are the storage account's table, blobs and STEP_QUEUE."""
    close: Callable[[], None] | None = None
    if platform is None:
        platform, close = build_platform(settings)
    ledger = ledger or Ledger(TableRowStore(table_service(settings.storage), settings.ledger_table))
    staging = staging or AzureBlobStore(blob_service(settings.storage))
    steps = steps or build_queue(settings.storage, settings.step_queue)
    return Lifecycle(settings, platform, ledger, build_alerts(settings), staging, steps, close=close)


def prepare_local_registry(data_dir: Path) -> str:
    """The local engine's MLflow store under `data_dir`, created once (its tracking URI).

    Set-up too: creating the sqlite schema runs MLflow's migrations (~9 s on a busy 2-core machine), which
    the first job would otherwise pay between its training and its results.
    """
    from shared.platforms.local import mlflow_store

    mlflow_store.use(data_dir)
    return mlflow_store.tracking_uri(data_dir)


@contextmanager
def platform_processes(settings: Settings) -> Iterator[list[str]]:
    """The configured platform's processes on this machine, for the duration of the block.

    The local engine's endpoint servers are resumed at entry (their names yielded) and stopped at exit, so
    `autopilot up` leaves nothing running after Ctrl-C and serves the same endpoints on its next start.
    Azure ML runs nothing here.
    """
    if settings.platform != "local":
        yield []
        return
    from shared.platforms.local import LocalPlatform

    local = LocalPlatform(settings)
    try:
        yield local.resume_all()
    finally:
        local.stop_all()
