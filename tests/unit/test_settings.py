"""Settings: defaults that run, and a clear error naming any missing or malformed setting."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from shared.azurite import azurite_connection_string, connection_string
from shared.local_settings import load_local_settings
from shared.settings import Settings, SettingsError, parse_duration

BASE = {"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"}


def test_defaults_run_the_embedded_engine() -> None:
    s = Settings.from_env(BASE)
    assert s.platform == "local" and s.idle_ttl == timedelta(hours=2)
    assert s.base_model == "SmolLM2-135M-Instruct" and s.eval_gate_base
    assert s.ingest_workers == 0 and Settings.from_env({**BASE, "INGEST_WORKERS": "3"}).ingest_workers == 3
    assert s.storage.connection_string and "devstoreaccount1" in s.storage.connection_string


@pytest.mark.parametrize(("env", "named"), [
    ({}, "AUTOPILOT_STORAGE"),
    ({**BASE, "AUTOPILOT_PLATFORM": "gcp"}, "AUTOPILOT_PLATFORM"),
    ({**BASE, "IDLE_TTL": "soon"}, "IDLE_TTL"),
    ({**BASE, "TEST_FRACTION": "1.5"}, "TEST_FRACTION"),
    ({**BASE, "TEST_ROWS_MAX": "many"}, "TEST_ROWS_MAX"),
    ({**BASE, "ENDPOINT_NAME": "../etc"}, "ENDPOINT_NAME"),
    ({**BASE, "INGEST_WORKERS": "-1"}, "INGEST_WORKERS"),
    ({**BASE, "INGEST_WORKERS": "all"}, "INGEST_WORKERS"),
    ({**BASE, "AUTOPILOT_PLATFORM": "azureml"}, "AZUREML_SUBSCRIPTION_ID"),
])
def test_bad_settings_name_themselves(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_azureml_defaults_to_a_fine_tunable_model() -> None:
    env = {**BASE, "AUTOPILOT_PLATFORM": "azureml", "AZUREML_SUBSCRIPTION_ID": "s",
           "AZUREML_RESOURCE_GROUP": "g", "AZUREML_WORKSPACE": "w"}
    s = Settings.from_env(env)
    assert s.base_model == "Phi-4" and s.azureml is not None and s.azureml.registry == "azureml"


@pytest.mark.parametrize(("raw", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400),
                                              ("01:30:00", 5400), ("5", 5)])
def test_durations(raw: str, seconds: float) -> None:
    assert parse_duration("X", raw).total_seconds() == seconds


def test_finetune_overrides_come_from_prefixed_settings() -> None:
    s = Settings.from_env({**BASE, "FINETUNE_NUM_TRAIN_EPOCHS": "2"})
    assert s.finetune_overrides == {"num_train_epochs": "2"}


def test_local_settings_fill_what_the_environment_leaves_unset(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"IDLE_TTL": "5m", "BASE_MODEL": "Phi-4",
                                                                 "SMOKE_CONVERSATIONS": 2}}))
    env = {"IDLE_TTL": "1h", "AUTOPILOT_STORAGE": "AccountName=a;AccountKey=k"}
    assert load_local_settings(path, env) == ["BASE_MODEL", "SMOKE_CONVERSATIONS"]
    # The environment wins.
    assert env == {"IDLE_TTL": "1h", "AUTOPILOT_STORAGE": "AccountName=a;AccountKey=k", "BASE_MODEL": "Phi-4",
                   "SMOKE_CONVERSATIONS": "2"}
    assert load_local_settings(tmp_path / "absent.json", env) == []


def test_a_fresh_clone_talks_to_the_local_emulator(tmp_path: Path) -> None:
    """Nothing set and no local.settings.json: `autopilot drop`/`status` use Azurite's default ports."""
    env: dict[str, str] = {}
    assert load_local_settings(tmp_path / "absent.json", env) == []
    assert Settings.from_env(env).storage.connection_string == azurite_connection_string()
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"AUTOPILOT_STORAGE": "AccountName=b;AccountKey=k"}}))
    env = {}
    load_local_settings(path, env)
    assert env["AUTOPILOT_STORAGE"] == "AccountName=b;AccountKey=k", "the file's storage wins"
    # Azure ML means a cloud deployment: no silent emulator there, the missing setting is still named.
    env = {"AUTOPILOT_PLATFORM": "azureml"}
    load_local_settings(tmp_path / "absent.json", env)
    assert "AUTOPILOT_STORAGE" not in env
    identity = {"AUTOPILOT_STORAGE__blobServiceUri": "https://a.blob.core.windows.net"}
    load_local_settings(tmp_path / "absent.json", identity)
    assert "AUTOPILOT_STORAGE" not in identity


def test_a_malformed_local_settings_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text("{not json")
    with pytest.raises(SettingsError, match=r"local\.settings\.json"):
        load_local_settings(path, {})
    path.write_text('{"Values": ["IDLE_TTL"]}')
    with pytest.raises(SettingsError, match="Values"):
        load_local_settings(path, {})


def test_the_development_storage_shorthand_means_azurite_on_its_default_ports() -> None:
    assert connection_string(" UseDevelopmentStorage=true ") == azurite_connection_string()
    assert connection_string("AccountName=a;AccountKey=k") == "AccountName=a;AccountKey=k"
    assert Settings.from_env(BASE).storage.connection_string == azurite_connection_string()


AZURE = {"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true", "AUTOPILOT_PLATFORM": "azureml",
         "AZUREML_SUBSCRIPTION_ID": "sub", "AZUREML_RESOURCE_GROUP": "rg", "AZUREML_WORKSPACE": "ws"}


def test_on_azure_the_endpoint_name_gets_a_stable_per_install_suffix() -> None:
    # Online endpoint names are unique per region across subscriptions: a bare default would collide.
    first = Settings.from_env({**AZURE, "AUTOPILOT_INSTALL_ID": "abc"}).endpoint_name
    assert re.fullmatch(r"autopilot-chat-[0-9a-f]{8}", first)
    assert Settings.from_env({**AZURE, "AUTOPILOT_INSTALL_ID": "abc"}).endpoint_name == first
    assert Settings.from_env({**AZURE, "AUTOPILOT_INSTALL_ID": "xyz"}).endpoint_name != first
    # Without an install id the workspace identifies the install.
    one = Settings.from_env(AZURE).endpoint_name
    assert one != Settings.from_env({**AZURE, "AZUREML_WORKSPACE": "ws2"}).endpoint_name
    assert Settings.from_env({**AZURE, "ENDPOINT_NAME": "chat"}).endpoint_name.startswith("chat-")
    local = {k: v for k, v in AZURE.items() if k != "AUTOPILOT_PLATFORM"}
    assert Settings.from_env(local).endpoint_name == "autopilot-chat"


def test_the_suffixed_name_keeps_azures_3_to_32_character_rule() -> None:
    assert len(Settings.from_env({**AZURE, "ENDPOINT_NAME": "a" * 23}).endpoint_name) == 32
    with pytest.raises(SettingsError, match="at most 23 characters"):
        Settings.from_env({**AZURE, "ENDPOINT_NAME": "a" * 24})
    with pytest.raises(SettingsError, match="ENDPOINT_NAME"):
        Settings.from_env({**AZURE, "ENDPOINT_NAME": "9chat"})


def test_a_token_budget_and_a_cost_estimate_by_default() -> None:
    assert Settings.from_env(BASE).max_tokens_per_run == 2_000_000
    assert Settings.from_env(AZURE).max_tokens_per_run == 50_000_000
    assert Settings.from_env({**BASE, "MAX_TOKENS_PER_RUN": "0"}).max_tokens_per_run is None
    assert Settings.from_env(BASE).cost_per_million_tokens == 3.0
    no_price = {**BASE, "TRAINING_COST_PER_MILLION_TOKENS": "0"}
    assert Settings.from_env(no_price).cost_per_million_tokens is None
    with pytest.raises(SettingsError, match="MIN_TRAINING_ROWS"):
        Settings.from_env({**BASE, "MIN_TRAINING_ROWS": "0"})
