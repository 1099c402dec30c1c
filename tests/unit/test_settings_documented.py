"""One declaration per setting: the README's and docs/azure.md's settings tables,
local.settings.json.example and infra/main.bicep's app settings agree with `shared.settings.SETTINGS`
(names, defaults, values that parse)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.settings import SETTINGS, Setting, SettingsError, setting

ROOT = Path(__file__).resolve().parents[2]
DECLARED = {s.env: s for s in SETTINGS}
# Read by other parts than Settings (the Functions host, logging, the CLI); documented, not declared here.
ELSEWHERE = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "AUTOPILOT_STORAGE__credential",
             "AUTOPILOT_LOG_FORMAT", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "AZUREML_SYSTEM_TOPIC"}


def _table_rows(path: Path) -> list[tuple[list[str], str]]:
    """(setting names, default cell) of each row of a markdown table whose first cell names settings."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 3:
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]*(?:__[A-Za-z]+)?)`", cells[0])
        if names and all(n.isupper() or "__" in n for n in names):
            rows.append((names, cells[1]))
    return rows


def _same(s: Setting, written: str, platform: str) -> bool:
    return bool(s.parse(s.env, written) == s.parse(s.env, s.default_for(platform)))


def _check_default(s: Setting, cell: str, platform: str) -> str | None:
    """Why `cell` (a table's default column) disagrees with the declaration, or None."""
    per_platform = {p: v for v, p in re.findall(r"`([^`]*)` \((local|azureml)\)", cell)}
    if per_platform:
        wrong = [p for p in ("local", "azureml") if p not in per_platform
                 or not _same(s, per_platform[p], p)]
        return f"{s.env}: {cell!r} vs {s.default!r}" if wrong else None
    literal = re.match(r"`([^`]*)`", cell)
    if literal is None:  # "—", "(required)", "(set by azd up)": the declaration has no default either
        return None if s.default_for(platform) == "" else f"{s.env}: documented without {s.default!r}"
    if s.default_for(platform) == "" and literal.group(1) not in ("", "0"):
        return f"{s.env}: documented default {literal.group(1)!r}, declared none"
    if _same(s, literal.group(1), platform):
        return None
    return f"{s.env}: {cell!r} vs {s.default_for(platform)!r}"


def _documented(path: Path, platform: str) -> tuple[dict[str, str], list[str]]:
    found: dict[str, str] = {}
    problems = []
    for names, cell in _table_rows(path):
        cells = [c.strip() for c in cell.split(" / ")] if " / " in cell else [cell] * len(names)
        if len(cells) != len(names):
            problems.append(f"{path.name}: {names} has {len(cells)} defaults")
            continue
        for name, default in zip(names, cells, strict=True):
            if name not in DECLARED:
                if name not in ELSEWHERE and not name.startswith("FINETUNE_"):
                    problems.append(f"{path.name}: {name} is documented but not declared in settings.py")
                continue
            found[name] = default
            if (why := _check_default(DECLARED[name], default, platform)) is not None:
                problems.append(f"{path.name}: {why}")
    return found, problems


def test_every_declared_setting_is_documented_with_its_default() -> None:
    readme, problems = _documented(ROOT / "README.md", "local")
    azure, azure_problems = _documented(ROOT / "docs" / "azure.md", "azureml")
    undocumented = [s.env for s in SETTINGS if s.env not in readme and s.env not in azure]
    assert not problems + azure_problems and not undocumented, (problems, azure_problems, undocumented)


def test_the_local_settings_example_parses_and_keeps_the_defaults() -> None:
    values = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))["Values"]
    wrong = []
    for name, value in values.items():
        if name in ELSEWHERE:
            continue
        s = DECLARED.get(name)
        if s is None:
            wrong.append(f"{name} is not a declared setting")
        elif value and s.default_for("local") and not _same(s, value, "local"):
            wrong.append(f"{name}={value!r}, declared default {s.default_for('local')!r}")
    assert not wrong, wrong


def test_the_bicep_app_settings_parse_and_keep_the_azure_defaults() -> None:
    bicep = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
    block = bicep[bicep.index("appSettings: {"):]
    block = block[: block.index("\n    }\n")]
    pairs = re.findall(r"^\s+([A-Za-z_][A-Za-z0-9_]*): (.+)$", block, re.MULTILINE)
    assert len(pairs) > 40, "the Bicep's appSettings block was not found"
    wrong = []
    for name, expression in pairs:
        if name in ELSEWHERE:
            continue
        s = DECLARED.get(name)
        literal = re.fullmatch(r"'([^']*)'", expression.strip())
        if s is None:
            wrong.append(f"{name} is not a declared setting")
        elif name == "AUTOPILOT_PLATFORM":  # the switch itself
            assert s.parse(name, literal.group(1) if literal else "") == "azureml"
        elif literal and literal.group(1) and s.default_for("azureml"):
            try:
                if not _same(s, literal.group(1), "azureml"):
                    wrong.append(f"{name}={literal.group(1)!r}, declared {s.default_for('azureml')!r}")
            except SettingsError as exc:
                wrong.append(str(exc))
    assert not wrong, wrong


@pytest.mark.parametrize("declared", SETTINGS, ids=lambda s: s.env)
def test_each_declared_default_parses_and_has_help(declared: Setting) -> None:
    for platform in ("local", "azureml"):
        if declared.default_for(platform):
            declared.parse(declared.env, declared.default_for(platform))
    assert declared.help and len(DECLARED) == len(SETTINGS)


def test_a_per_platform_default_is_expressible() -> None:
    budget = setting("MAX_TOKENS_PER_RUN")
    assert budget.read({}, "azureml") == 50_000_000 and budget.read({}, "local") == 2_000_000
    models = {setting("BASE_MODEL").read({}, p) for p in ("local", "azureml")}
    assert models == {"SmolLM2-135M-Instruct", "Phi-4"}


@pytest.mark.parametrize("cell", ["`30m`", "`15m`"])
def test_the_check_catches_a_drifted_default(cell: str) -> None:
    drifted = _check_default(setting("STEP_TIMEOUT"), cell, "local")
    assert (drifted is None) == (cell == "`15m`")


def test_every_binding_expression_is_a_declared_setting_in_the_local_example() -> None:
    # Core Tools resolves `%NAME%` in a trigger from local.settings.json and refuses to start without it.
    source = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "functions").glob("*.py"))
    names = set(re.findall(r"%([A-Z][A-Z0-9_]*)%", source))
    values = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))["Values"]
    assert {"STEP_QUEUE", "INCOMING_CONTAINER"} <= names
    assert names <= set(DECLARED) and not names - set(values), sorted(names - set(values))
