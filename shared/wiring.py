"""The composition root: settings in, a Lifecycle over the configured adapters out."""

from __future__ import annotations

from shared.alerts import Alerts, AlertSink, EventGridSink, FileSink, WebhookSink
from shared.ledger import Ledger
from shared.lifecycle import Lifecycle
from shared.platforms.port import Platform
from shared.settings import Settings
from shared.storage import blob_service, table_service


def build_platform(settings: Settings) -> Platform:
    """The platform adapter the settings name; the local engine's heavy imports stay out of Azure."""
    if settings.platform == "azureml":
        from shared.platforms.azureml import AzureMLPlatform

        return AzureMLPlatform(settings)
    from shared.platforms.local import LocalPlatform

    return LocalPlatform(settings)


def build_alerts(settings: Settings) -> Alerts:
    sinks: list[AlertSink] = []
    if settings.alert_topic_endpoint:
        sinks.append(EventGridSink(settings.alert_topic_endpoint, settings.alert_topic_key))
    if settings.alert_webhook_url:
        sinks.append(WebhookSink(settings.alert_webhook_url))
    if settings.platform == "local" or not sinks:
        sinks.append(FileSink(settings.data_dir / "alerts.jsonl"))
    return Alerts(sinks)


def build_lifecycle(settings: Settings, platform: Platform | None = None) -> Lifecycle:
    """Wire the lifecycle; tests pass their own platform (e.g. the Azure ML fake)."""
    return Lifecycle(settings, platform or build_platform(settings),
                     Ledger(table_service(settings.storage), settings.ledger_table),
                     build_alerts(settings), blob_service(settings.storage))
