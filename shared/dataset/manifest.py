"""Upload manifests: an optional `NAME.manifest.json` next to an upload that says how to fine-tune on it.

    chats.jsonl                 the data
    chats.jsonl.manifest.json   {"base_model": "Phi-4", "epochs": 2, "hyperparameters": {"lora_r": 16},
                                 "screening": {"personal_data": "report"}}

Every key is optional. Unknown keys are errors (a typo must not silently fall back to a default), and each
error names the key and what is expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.dataset.screening import Action, ScreeningError, parse_screening
from shared.dataset.tally import Limits
from shared.finetune import RANGES

SUFFIX = ".manifest.json"
MAX_BYTES = 64 * 1024
_PARAMETER = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
RESERVED_TAG_PREFIX = "autopilot-"  # the run id, content hash and endpoint marks (shared.platforms.port)
# What a run starts from, and how the chat format's per-turn weights are treated: the keys a project file
# (project.json) would hold too, so they are parsed by one function (`training_options`) either may call.
TRAINING_KEYS = ("start_from", "train_weight_zero_turns")
START_FROM = ("base", "live")
_KEYS = ("data", "test", "base_model", "run_name", "epochs", "test_fraction", "max_tokens_per_run",
         "hyperparameters", "tags", "screening", *TRAINING_KEYS)


class ManifestError(ValueError):
    """The manifest is malformed; the message names the key and what is expected."""


@dataclass(frozen=True)
class TrainingOptions:
    """`start_from`: "base" (the default: the base model) or "live" (the project's live fine-tune, its weights
    trained further on the new data). `train_weight_zero_turns`: on a platform that cannot leave `"weight": 0`
    turns out of the loss (Azure ML), train them like any other instead of refusing the upload."""

    start_from: str = "base"
    train_weight_zero_turns: bool = False


def training_options(name: str, doc: Mapping[str, Any]) -> TrainingOptions:
    """The TRAINING_KEYS of a manifest or project document `name`; ManifestError names a bad one."""
    start = doc.get("start_from", "base")
    if start not in START_FROM:
        raise ManifestError(f"{name}: \"start_from\" must be one of {', '.join(START_FROM)}, got {start!r}")
    accept = doc.get("train_weight_zero_turns", False)
    if not isinstance(accept, bool):
        raise ManifestError(f"{name}: \"train_weight_zero_turns\" must be true or false, got {accept!r}")
    return TrainingOptions(start_from=start, train_weight_zero_turns=accept)


@dataclass(frozen=True)
class Manifest:
    """What a manifest asks for. `data` is the upload's blob name (same folder as the manifest)."""

    data: str
    test: str | None = None  # a held-out test file; without one the data is split
    base_model: str | None = None
    run_name: str | None = None
    epochs: int | None = None
    test_fraction: float | None = None
    max_tokens_per_run: int | None = None
    hyperparameters: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    screening: Mapping[str, Action] = field(default_factory=dict)  # per category; the rest from settings
    training: TrainingOptions = field(default_factory=TrainingOptions)

    def limits(self, base: Limits) -> Limits:
        """`base` with this manifest's epochs, test fraction, token budget and screening policy applied."""
        wanted = {"epochs": self.epochs, "test_fraction": self.test_fraction,
                  "max_tokens_per_run": self.max_tokens_per_run}
        changes: dict[str, Any] = {k: v for k, v in wanted.items() if v is not None}
        if self.screening and base.screening is not None:
            changes["screening"] = base.screening.with_choices(self.screening)
        return dataclasses.replace(base, **changes)


def is_manifest(name: str) -> bool:
    """Whether a blob name is a manifest rather than data."""
    return name.lower().endswith(SUFFIX)


def data_name_for(manifest_name: str) -> str:
    """The upload a manifest describes by default: its own name without `.manifest.json`."""
    return manifest_name[: -len(SUFFIX)]


def manifest_name_for(data_name: str) -> str:
    """Where the manifest for an upload would be."""
    return data_name + SUFFIX


def parse_manifest(raw: bytes, name: str) -> Manifest:
    """Parse and check a manifest blob named `name`; raise ManifestError saying what to fix."""
    doc = _json_object(raw, name, "a manifest")
    for key in doc:
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), _KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(_KEYS)}"
            raise ManifestError(f"{name}: unknown key {key!r}{hint}")
    data = _sibling(name, "data", doc.get("data")) or data_name_for(name)
    test = _sibling(name, "test", doc.get("test"))
    if test == data:  # evaluated on its own training rows, the gate would pass whatever was learned
        raise ManifestError(f"{name}: \"test\" names the same file as \"data\" ({test}); a test file must "
                            "hold conversations kept out of training (or leave \"test\" out to split the "
                            "data)")
    return Manifest(
        data=data,
        test=test,
        base_model=_optional(name, "base_model", doc, _text),
        run_name=_optional(name, "run_name", doc, _text),
        epochs=_optional(name, "epochs", doc, _epochs),
        test_fraction=_optional(name, "test_fraction", doc, _fraction),
        max_tokens_per_run=_optional(name, "max_tokens_per_run", doc,
                                     lambda n, k, v: _int(n, k, v, 1, 10**13)),
        hyperparameters=_hyperparameters(name, doc.get("hyperparameters", {})),
        tags=_tags(name, doc.get("tags", {})),
        screening=_screening(name, doc.get("screening", {})),
        training=training_options(name, doc),
    )


def _sibling(name: str, key: str, value: Any) -> str | None:
    """A file named by the manifest: a plain name in the manifest's own folder, never a path out of it."""
    if value is None:
        return None
    text = _text(name, key, value)
    if "/" in text or "\\" in text or text in (".", ".."):
        raise ManifestError(f"{name}: {key!r} must be a file name in the manifest's own folder, got {text!r}")
    folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    return folder + text


def _optional(name: str, key: str, doc: dict[str, Any], check: Any) -> Any:
    value = doc.get(key)
    return None if value is None else check(name, key, value)


def _text(name: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise ManifestError(f"{name}: {key!r} must be a non-empty string of at most 256 characters")
    return value.strip()


def _int(name: str, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ManifestError(f"{name}: {key!r} must be a whole number from {low:,} to {high:,}, got {value!r}")
    return value


def _epochs(name: str, key: str, value: Any) -> int:
    """`epochs` is num_train_epochs by another name: the same rule (shared.finetune.RANGES) for both."""
    rule = RANGES["num_train_epochs"]
    return _int(name, key, value, int(rule.low), int(rule.high))


def _fraction(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ManifestError(f"{name}: {key!r} must be a number between 0 and 1 (exclusive), got {value!r}")
    return float(value)


def _hyperparameters(name: str, value: Any) -> dict[str, str | int | float | bool]:
    if not isinstance(value, dict):
        raise ManifestError(f"{name}: \"hyperparameters\" must be an object of name: value")
    for key, item in value.items():
        if not _PARAMETER.match(key):
            raise ManifestError(f"{name}: hyperparameter name {key!r} must be lower_snake_case "
                                "(e.g. learning_rate)")
        if not isinstance(item, str | int | float | bool):
            raise ManifestError(f"{name}: hyperparameter {key!r} must be a string, number or boolean")
    return dict(value)


def _screening(name: str, value: Any) -> dict[str, Action]:
    try:  # the one schema of the key (a project file reads it the same way)
        return parse_screening(value, name)
    except ScreeningError as exc:
        raise ManifestError(str(exc)) from None


def _tags(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestError(f"{name}: \"tags\" must be an object of string: string")
    if len(value) > 20:
        raise ManifestError(f"{name}: at most 20 tags")
    reserved = sorted(k for k in value if str(k).lower().startswith(RESERVED_TAG_PREFIX))
    if reserved:
        raise ManifestError(f"{name}: tag {reserved[0]!r} is reserved; tags starting with "
                            f"{RESERVED_TAG_PREFIX!r} are the autopilot's own")
    return dict(value)


# A project's own settings, `incoming/<project>/project.json`: what every upload of the project gets unless
# its manifest says otherwise. One schema with the manifest (the same keys, parsed by `parse_manifest`), less
# the keys about one upload's files, plus what only a project can choose: how long its model may sit idle
# before it is put to sleep, and its deploy gate.
PROJECT_FILE_ONLY = ("idle_ttl", "eval_gate_max_drop", "smoke_conversations")
_UPLOAD_ONLY = ("data", "test", "run_name")
_PROJECT_KEYS = tuple(k for k in _KEYS if k not in _UPLOAD_ONLY) + PROJECT_FILE_ONLY


@dataclass(frozen=True)
class ProjectFile:
    """A project's settings: `defaults` (a manifest's keys, applied under each upload's own manifest), and
    the keys only a project has (None: the app setting of the same name)."""

    defaults: Manifest
    idle_ttl_seconds: float | None = None
    eval_gate_max_drop: float | None = None
    smoke_conversations: int | None = None

    def under(self, manifest: Manifest | None) -> Manifest:
        """The manifest an upload runs with: its own keys, and the project's where it has none."""
        if manifest is None:
            return self.defaults
        base = self.defaults
        merged = ("hyperparameters", "tags", "screening")  # key by key: the manifest's win
        chosen: dict[str, Any] = {f.name: getattr(manifest, f.name) for f in dataclasses.fields(Manifest)
                                  if f.name not in merged and getattr(manifest, f.name) is not None}
        chosen |= {name: {**getattr(base, name), **getattr(manifest, name)} for name in merged}
        if manifest.training == TrainingOptions():  # the manifest chose nothing: the project's choice
            chosen["training"] = base.training
        return dataclasses.replace(base, **chosen)


def parse_project_file(raw: bytes, name: str) -> ProjectFile:
    """Parse and check a project's `project.json` named `name`; raise ManifestError naming the bad key."""
    doc = _json_object(raw, name, "a project file")
    for key in doc:
        if key not in _PROJECT_KEYS:
            close = difflib.get_close_matches(str(key), _PROJECT_KEYS, n=1)
            where = " (it belongs in an upload's manifest)" if key in _UPLOAD_ONLY else ""
            hint = f"; did you mean {close[0]!r}?" if close and not where else \
                f"; known keys: {', '.join(_PROJECT_KEYS)}"
            raise ManifestError(f"{name}: unknown key {key!r}{where}{hint}")
    shared = {k: v for k, v in doc.items() if k not in PROJECT_FILE_ONLY}
    return ProjectFile(
        defaults=parse_manifest(orjson.dumps({**shared, "data": "project.json"}), name),
        idle_ttl_seconds=_optional(name, "idle_ttl", doc, _idle_ttl),
        eval_gate_max_drop=_optional(name, "eval_gate_max_drop", doc, _drop),
        smoke_conversations=_optional(name, "smoke_conversations", doc,
                                      lambda n, k, v: _int(n, k, v, 1, 100)),
    )


def _json_object(raw: bytes, name: str, what: str) -> dict[str, Any]:
    """The JSON object a manifest or project file holds; ManifestError saying what is wrong with it."""
    if len(raw) > MAX_BYTES:
        raise ManifestError(f"{name}: {what} may be at most {MAX_BYTES // 1024} KiB")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{name} must be a JSON object")
    return doc


def _idle_ttl(name: str, key: str, value: Any) -> float:
    """A duration as the IDLE_TTL setting writes it ("90m", "2h", "1d"), or seconds as a number."""
    from shared.settings import SettingsError, parse_duration

    wrong = f"{name}: {key!r} must be a duration like \"2h\" or \"90m\", got {value!r}"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ManifestError(wrong)
    try:
        seconds = parse_duration(key, str(value)).total_seconds()
    except SettingsError:
        raise ManifestError(wrong) from None
    if seconds <= 0:
        raise ManifestError(f"{name}: {key!r} must be longer than 0, got {value!r}")
    return seconds


def _drop(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ManifestError(f"{name}: {key!r} must be a number from 0 to 1 (a ROUGE-L drop), got {value!r}")
    return float(value)
