"""One default base model per platform: declared with BASE_MODEL in shared/settings.py, nowhere else."""

from __future__ import annotations

import ast
from pathlib import Path

from shared.platforms.azureml.base_model import SUGGESTED_MODEL
from shared.platforms.local.base_model_names import DEFAULT, label
from shared.settings import DEFAULT_BASE_MODEL, Settings, setting

ROOT = Path(__file__).resolve().parents[2]


def test_settings_and_both_adapters_share_one_default_per_platform() -> None:
    assert setting("BASE_MODEL").default is DEFAULT_BASE_MODEL
    assert DEFAULT_BASE_MODEL["local"] == DEFAULT and DEFAULT_BASE_MODEL["azureml"] == SUGGESTED_MODEL
    assert label("") == DEFAULT
    assert Settings.from_env({"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"}).base_model == DEFAULT


def test_no_other_module_of_the_app_writes_a_default_model_name() -> None:
    names = set(DEFAULT_BASE_MODEL.values())
    homes = [str(p.relative_to(ROOT)) for folder in ("shared", "functions", "devhost")
             for p in sorted((ROOT / folder).rglob("*.py"))
             if any(isinstance(node, ast.Constant) and node.value in names
                    for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))))]
    assert homes == ["shared/settings.py"], homes
