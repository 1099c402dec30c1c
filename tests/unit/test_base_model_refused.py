"""A base model the platform cannot fine-tune is refused when the upload arrives: before anything is read,
staged or submitted, with the platform's reason in the run, one alert, and the upload left where it was."""

from __future__ import annotations

import json
from pathlib import Path

from shared.lifecycle import Result
from shared.runs import State
from tests.fakes.world import MemoryWorld

WHY = "base model Phi-3-mini-4k-instruct is archived; set BASE_MODEL to a current model, e.g. Phi-4"


def test_a_refused_base_model_stops_the_upload_before_staging_with_one_alert(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, BASE_MODEL="Phi-3-mini-4k-instruct")
    world.platform.refused_models["Phi-3-mini-4k-instruct"] = WHY
    upload = world.drop("chats.jsonl")
    first = world.life.on_upload(upload)
    again = world.life.on_upload(upload)  # Event Grid delivers at least once
    world.drain()

    assert first.result is Result.REJECTED and again.result is Result.ALREADY_HANDLED
    (run,) = world.ledger.find(upload=upload.path)
    assert run.state is State.REJECTED and run.error == WHY and run.base_model == "Phi-3-mini-4k-instruct"
    assert list(world.staging.names(world.settings.staged_container)) == [], "nothing staged"
    assert world.platform.effects["submit"] == 0
    assert world.staging.properties(upload) is not None, "the upload is not quarantined: its data is fine"
    sink = world.settings.data_dir / "alerts.jsonl"
    alerts = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [a["alert_class"] for a in alerts] == ["upload.base_model_refused"] and WHY in alerts[0]["summary"]


def test_a_manifest_s_base_model_is_checked_too(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    world.platform.refused_models["gone-model"] = "no such model; set BASE_MODEL or the manifest's base_model"
    world.life.on_upload(world.drop("chats.jsonl.manifest.json", b'{"base_model": "gone-model"}'))
    outcome = world.life.on_upload(world.drop("chats.jsonl"))
    assert outcome.result is Result.REJECTED and "no such model" in world.get(outcome.run_id).error
    assert world.platform.effects["submit"] == 0
