"""Projects: several models per install. The first folder under `incoming/` names a project.

    incoming/support/2026-12.jsonl   project `support`
    incoming/sales/leads.jsonl       project `sales`
    incoming/chats.jsonl             the default project, named by ENDPOINT_NAME (today's installs)

Each project has its own lineage: its own online endpoint (the project's name, with the install's suffix on
Azure: endpoint names are unique per region), so its deploy turns, blue/green, idle teardown, redeploys and
alerts never touch another project's. A project's name follows the endpoint-name rule
(`shared.platforms.endpoint_names.ENDPOINT_NAME_RULE`): it *is* the endpoint's name, less the suffix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.platforms.endpoint_names import ENDPOINT_NAME_RULE, SUFFIX_LENGTH, project_name
from shared.runs import Run, State
from shared.settings import Settings

SETTINGS_FILE = "project.json"  # a project's own settings: incoming/<project>/project.json


class ProjectNameError(ValueError):
    """A folder under the incoming container that cannot name a project; the message says why and how."""


def project_of(settings: Settings, blob_name: str) -> str:
    """The project an upload belongs to: its first folder, or the default project for a file at the root."""
    head, sep, _ = blob_name.lstrip("/").partition("/")
    return head if sep else project_name(settings)


def endpoint_of(settings: Settings, project: str) -> str:
    """The endpoint a project's models are deployed to; raises ProjectNameError for a name Azure refuses.

    The default project keeps ENDPOINT_NAME's endpoint; another project's endpoint is its own name, with the
    install's suffix on Azure (the same suffix as the default's, so one install's endpoints read as a set).
    """
    if project == project_name(settings):
        return settings.endpoint_name
    name = project
    if settings.platform == "azureml":
        name = f"{project}{settings.endpoint_name[-(SUFFIX_LENGTH + 1):]}"
    # The name alone keeps the rule too, so a project is valid (or not) on every platform alike.
    if not (ENDPOINT_NAME_RULE.fullmatch(project) and ENDPOINT_NAME_RULE.fullmatch(name)):
        limit = 32 - (SUFFIX_LENGTH + 1 if settings.platform == "azureml" else 0)
        raise ProjectNameError(f"the folder {project[:80]!r} cannot name a project: use 3 to {limit} "
                               "letters, digits or hyphens, starting with a letter and not ending with a "
                               "hyphen (it becomes the project's endpoint name)")
    return name


def run_project(settings: Settings, run: Run) -> str:
    """The project a run belongs to (runs recorded before projects existed: the default project)."""
    return run.project or project_name(settings)


def is_settings_file(blob_name: str) -> bool:
    """Whether a blob is a project's settings file (`<project>/project.json`) rather than data."""
    parts = blob_name.lstrip("/").split("/")
    return len(parts) == 2 and parts[1] == SETTINGS_FILE


# What a project is doing, for the front door's model list, the page and the CLI (one glance per project).
LIVE, ASLEEP, TRAINING, FAILING, NEVER_DEPLOYED = "live", "asleep", "training", "failing", "never deployed"
_TRAINING = frozenset({State.VALIDATED, State.SUBMITTED, State.RUNNING, State.SUCCEEDED, State.REGISTERED,
                       State.DEPLOYING})
_EPOCH = datetime.min.replace(tzinfo=UTC)
_FAILED = frozenset({State.FAILED, State.REJECTED, State.ROLLED_BACK, State.UNHEALTHY})


@dataclass(frozen=True)
class ProjectView:
    """One project at a glance: its state, its live model version, whether a run is training, its runs."""

    name: str
    endpoint: str
    state: str  # live, asleep, training, failing or never deployed
    live_version: str = ""  # model_name:model_version of the run serving it (or last served, asleep)
    training: bool = False  # a run of it is on its way (validated ... deploying)
    runs: tuple[Run, ...] = ()


def project_views(settings: Settings, runs: Iterable[Run]) -> list[ProjectView]:
    """Every project the runs name (and the default project, always), by name."""
    by_project: dict[str, list[Run]] = {project_name(settings): []}
    for run in runs:
        if run.state in (State.WAITING, State.ARRIVED, State.DUPLICATE):
            continue
        by_project.setdefault(run_project(settings, run), []).append(run)
    return [_view(settings, name, found) for name, found in sorted(by_project.items())]


def _view(settings: Settings, name: str, runs: list[Run]) -> ProjectView:
    try:
        endpoint = endpoint_of(settings, name)
    except ProjectNameError:
        endpoint = ""  # a refused folder's records: listed so the refusal shows, never deployed
    ordered = tuple(sorted(runs, key=lambda r: r.created_at or _EPOCH, reverse=True))  # newest first
    serving = [r for r in ordered if r.state == State.LIVE]
    asleep = [r for r in ordered if r.state == State.TORN_DOWN]
    training = any(r.state in _TRAINING for r in ordered)
    shown = serving or asleep
    version = f"{shown[0].model_name}:{shown[0].model_version}" if shown else ""
    if serving:
        state = LIVE
    elif training:
        state = TRAINING
    elif asleep:
        state = ASLEEP
    elif ordered and ordered[0].state in _FAILED:
        state = FAILING
    else:
        state = NEVER_DEPLOYED
    return ProjectView(name, endpoint, state, version, training, ordered)
