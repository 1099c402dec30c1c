"""`autopilot drop`, `status` and `redeploy` against a real Azurite, as an operator types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from shared.storage import blob_service

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"
pytestmark = pytest.mark.integration


@pytest.fixture
def env(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for key, value in settings_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AUTOPILOT_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no local.settings.json here
    return settings_env


def test_drop_uploads_to_the_incoming_container_with_force(env: dict[str, str], settings,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drop", str(SAMPLE), "--force", "--name", "again.jsonl"]) == 0
    assert f"{env['INCOMING_CONTAINER']}/again.jsonl (force=true)" in capsys.readouterr().out
    blob = blob_service(settings.storage).get_blob_client(env["INCOMING_CONTAINER"], "again.jsonl")
    props = blob.get_blob_properties()
    assert props.metadata == {"force": "true"} and props.size == SAMPLE.stat().st_size
    assert main(["drop", str(SAMPLE)]) == 0
    plain = blob_service(settings.storage).get_blob_client(env["INCOMING_CONTAINER"], SAMPLE.name)
    assert plain.get_blob_properties().metadata == {}
    assert main(["drop", "no-such-file.jsonl"]) == 2


def test_status_and_redeploy_read_the_ledger(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["runs"] == [] and view["platform"] == "local" and view["endpoints"] == []
    assert main(["status"]) == 0
    assert "autopilot drop FILE" in capsys.readouterr().out
    assert main(["redeploy", "run-0123456789ab"]) == 1
    assert "no run with id 'run-0123456789ab'" in capsys.readouterr().err
    assert main(["redeploy", "run-missing"]) == 2  # not a run id's shape: refused before the ledger is read
    assert "'run-missing' is not a run id" in capsys.readouterr().err
