"""Many models per install (issue 23): the first folder under incoming/ names a project, and each project has
its own lineage — endpoint, deploy turns, blue/green, teardown, alerts — and its own key at the front door.

Rule tests on the in-memory world (tests/fakes/world.py): the real handlers and step queue, the in-memory
platform counting every effect; the front door is the real FrontDoor over the world's lifecycle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.front import FrontDoor, Refusal
from shared.front.keys import EVERY_PROJECT, grant, project_key
from shared.platforms.port import PROJECT_TAG
from shared.projects import ProjectNameError, endpoint_of, project_of
from shared.runs import State
from shared.settings import Settings
from tests.fakes.world import SAMPLE, MemoryWorld

KEY = "install-key-for-projects"
LINES = SAMPLE.read_bytes().splitlines(keepends=True)
SUPPORT, SALES = b"".join(LINES[:30]), b"".join(LINES[10:40])


def world_at(tmp_path: Path, **env: str) -> MemoryWorld:
    world = MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="2", FRONT_DOOR_KEY=KEY, **env)

    def reply(deployment: str, payload: Mapping[str, Any]) -> Any:  # each deployment answers as itself
        return {"output": f"answer from {deployment}"}

    world.platform.reply = reply
    return world


def alert_records(world: MemoryWorld) -> list[dict[str, Any]]:
    path = world.settings.data_dir / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def ask(door: FrontDoor, model: str, scope: str = EVERY_PROJECT) -> str:
    answer = door.chat({"model": model, "messages": [{"role": "user", "content": "hi"}]}, 0, scope)
    return str(answer["choices"][0]["message"]["content"])


def serving(world: MemoryWorld, endpoint: str) -> dict[str, int]:
    return {d: share for d, share in world.platform.endpoints[endpoint].traffic.items() if share}


def test_the_first_folder_names_the_project_and_a_root_file_is_the_default_project() -> None:
    local = Settings.from_env({"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"})
    assert project_of(local, "support/2026-12.jsonl") == "support"
    assert project_of(local, "support/deep/er/x.jsonl") == "support"
    assert project_of(local, "chats.jsonl") == "autopilot-chat"
    assert endpoint_of(local, "support") == "support"
    assert endpoint_of(local, "autopilot-chat") == local.endpoint_name
    azure = Settings.from_env({"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true",
                               "AUTOPILOT_PLATFORM": "azureml", "AZUREML_SUBSCRIPTION_ID": "s",
                               "AZUREML_RESOURCE_GROUP": "g", "AZUREML_WORKSPACE": "w",
                               "AUTOPILOT_INSTALL_ID": "one"})
    suffix = azure.endpoint_name.rsplit("-", 1)[1]
    assert endpoint_of(azure, "support") == f"support-{suffix}"  # unique per region, like the default's
    assert endpoint_of(azure, "a" * 23).startswith("a" * 23)  # 23 + 9 = Azure's 32
    for bad in ("a" * 24, "x", "9lives", "sales_team", "ends-", "café"):
        with pytest.raises(ProjectNameError, match="cannot name a project"):
            endpoint_of(azure, bad)


def test_two_projects_uploaded_at_once_both_go_live_each_on_its_own_endpoint(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    world.life.on_upload(world.drop("support/2026-12.jsonl", SUPPORT))
    world.life.on_upload(world.drop("sales/leads.jsonl", SALES))
    world.drain(workers=2)
    support, sales = world.run_of("support/2026-12.jsonl"), world.run_of("sales/leads.jsonl")
    assert (support.project, sales.project) == ("support", "sales")
    world.platform.finish(support.job_name)
    world.platform.finish(sales.job_name)
    world.life.on_job_event(world.event(support, "Completed"))
    world.life.on_job_event(world.event(sales, "Completed"))
    world.drain(workers=2)
    support, sales = world.get(support.run_id), world.get(sales.run_id)
    assert support.state == sales.state == State.LIVE
    assert (support.endpoint, sales.endpoint) == ("support", "sales")
    # Deploys take turns per project: neither waited for the other's deployment.
    notes = [entry.get("note", "") for run in (support, sales) for entry in run.history]
    assert not [n for n in notes if n.startswith("waiting for")], notes
    door = FrontDoor(world.life, KEY, poll_s=0.01)
    assert ask(door, "support") == f"answer from {support.deployment}"
    assert ask(door, "sales") == f"answer from {sales.deployment}"
    listed = {m["id"]: m for m in door.models()["data"]}
    assert listed["support"]["state"] == listed["sales"]["state"] == "live"
    assert listed["support"]["live_version"] == f"{support.model_name}:{support.model_version}"
    assert listed["autopilot-chat"]["state"] == "never deployed"
    assert world.alerts() == []


def test_a_new_run_of_one_project_leaves_the_others_model_key_and_traffic_alone(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    sales = world.live_run("sales/leads.jsonl", SALES)
    first = world.live_run("support/a.jsonl", SUPPORT)
    before = (serving(world, "sales"), world.platform.endpoints["sales"].deployments,
              world.ledger.endpoints.get("sales"))
    effects_on_sales = [e for e in world.platform.scored if e[0] == "sales"]
    second = world.live_run("support/b.jsonl", b"".join(LINES[5:35]))
    assert world.get(first.run_id).state != State.LIVE  # blue/green within the project
    assert second.endpoint == "support" and serving(world, "support") == {second.deployment: 100}
    # The other project: same live run, same deployment and traffic, no new request, no alert, same key.
    assert world.get(sales.run_id).state == State.LIVE
    assert (serving(world, "sales"), world.platform.endpoints["sales"].deployments,
            world.ledger.endpoints.get("sales")) == before
    assert [e for e in world.platform.scored if e[0] == "sales"] == effects_on_sales
    assert all(a["details"]["project"] == "support" for a in alert_records(world))
    door = FrontDoor(world.life, KEY, poll_s=0.01)
    sales_key = project_key(KEY, "sales")
    assert door.authorize({"authorization": f"Bearer {sales_key}"}) == "sales"
    assert ask(door, "sales", "sales") == f"answer from {sales.deployment}"


def test_a_bad_folder_name_is_refused_by_name_with_one_alert(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    blob = world.drop("sales_team/leads.jsonl", SALES)
    world.life.on_upload(blob)
    world.life.on_upload(blob)  # delivered twice: still one alert
    world.drain()
    (record,) = [r for r in world.ledger.all()]
    assert record.state == State.REJECTED and "'sales_team' cannot name a project" in record.error
    assert world.alerts() == ["upload.rejected"]
    (alert,) = alert_records(world)
    assert "sales_team" in alert["summary"] and alert["details"]["project"] == "sales_team"
    assert world.platform.effects["submit"] == 0


def test_the_same_data_in_two_projects_trains_twice_not_a_duplicate(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    one = world.upload("support/x.jsonl", SUPPORT)
    other = world.upload("sales/x.jsonl", SUPPORT)
    assert one.run_id != other.run_id and other.state == State.SUBMITTED
    # Each job says its project, so the engine compares it with that project's live model.
    assert world.platform.specs[one.job_name].tags[PROJECT_TAG] == "support"
    assert world.platform.specs[other.job_name].tags[PROJECT_TAG] == "sales"


def test_a_project_key_opens_its_project_only_and_keys_compare_in_constant_time(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    world.live_run("support/a.jsonl", SUPPORT)
    world.live_run("sales/b.jsonl", SALES)
    door = FrontDoor(world.life, KEY, poll_s=0.01)
    support_key = project_key(KEY, "support")
    assert support_key.startswith("support.") and support_key != project_key(KEY, "sales")
    assert grant(KEY, KEY) == EVERY_PROJECT and grant(support_key, KEY) == "support"
    assert grant(support_key[:-1] + "x", KEY) is None
    assert grant("sales." + support_key.split(".", 1)[1], KEY) is None  # a key is bound to its project
    scope = door.authorize({"authorization": f"Bearer {support_key}"})
    with pytest.raises(Refusal) as refused:
        ask(door, "sales", scope)
    assert refused.value.status == 404
    assert [m["id"] for m in door.models(scope)["data"]] == ["support"]
    assert {m["id"] for m in door.models()["data"]} == {"support", "sales", "autopilot-chat"}


def settings_file(world: MemoryWorld, project: str, doc: dict[str, Any] | bytes) -> Any:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return world.life.on_upload(world.drop(f"{project}/project.json", raw))


def test_project_settings_apply_to_its_uploads_and_a_manifest_still_overrides(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    settled = settings_file(world, "support", {"base_model": "Phi-4-mini", "epochs": 2, "idle_ttl": "30m",
                                               "eval_gate_max_drop": 0.2, "smoke_conversations": 1,
                                               "hyperparameters": {"lora_r": 16}, "tags": {"team": "care"}})
    assert not settled.run_id and list(world.ledger.all()) == [] and world.alerts() == []
    plain = world.upload("support/a.jsonl", SUPPORT)
    assert plain.base_model == "Phi-4-mini" and plain.overrides == {"lora_r": 16, "num_train_epochs": 2}
    assert (plain.idle_ttl_seconds, plain.eval_gate_max_drop, plain.smoke_conversations) == (1800, 0.2, 1)
    assert plain.tags == {"team": "care"}
    world.life.on_upload(world.drop("support/b.jsonl.manifest.json", json.dumps(
        {"epochs": 3, "hyperparameters": {"learning_rate": 0.0001}}).encode()))
    chosen = world.upload("support/b.jsonl", b"".join(LINES[3:33]))
    assert chosen.base_model == "Phi-4-mini"  # the project's, where the manifest says nothing
    assert chosen.overrides == {"lora_r": 16, "learning_rate": 0.0001, "num_train_epochs": 3}
    other = world.upload("sales/c.jsonl", SALES)  # another project: none of it
    assert other.base_model == world.settings.base_model and other.overrides == {}
    assert other.idle_ttl_seconds is None


def test_a_changed_project_file_affects_later_runs_only(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    settings_file(world, "support", {"epochs": 2})
    before = world.upload("support/a.jsonl", SUPPORT)
    settings_file(world, "support", {"epochs": 4})
    after = world.upload("support/b.jsonl", b"".join(LINES[2:32]))
    assert world.get(before.run_id).overrides == {"num_train_epochs": 2}
    assert after.overrides == {"num_train_epochs": 4}
    # The same data again under the new settings is another run, not a duplicate.
    again = world.upload("support/a-again.jsonl", SUPPORT)
    assert again.state == State.SUBMITTED and again.run_id != before.run_id


@pytest.mark.parametrize(("doc", "named"), [
    ({"epoch": 2}, "'epoch'; did you mean 'epochs'?"),
    ({"idle_ttl": "soon"}, "'idle_ttl' must be a duration"),
    ({"eval_gate_max_drop": 2}, "'eval_gate_max_drop' must be a number from 0 to 1"),
    ({"data": "x.jsonl"}, "'data' (it belongs in an upload's manifest)"),
    ({"hyperparameters": {"num_train_epochs": 0}}, "num_train_epochs"),
])
def test_a_bad_project_file_key_is_refused_by_name_with_one_alert(tmp_path: Path, doc: dict[str, Any],
                                                                   named: str) -> None:
    world = world_at(tmp_path)
    refused = settings_file(world, "support", doc)
    settings_file(world, "support", doc)  # delivered twice
    assert refused.state == State.REJECTED and named in refused.detail
    assert world.alerts() == ["upload.rejected"]
    # An upload while the file is bad is not trained with other settings: refused, naming the key, once.
    blob = world.drop("support/a.jsonl", SUPPORT)
    data = world.life.on_upload(blob)
    world.life.on_upload(blob)
    assert data.state == State.REJECTED and named in data.detail and "support/project.json" in data.detail
    assert world.alerts() == ["upload.rejected"] * 2 and world.platform.effects["submit"] == 0
    assert {a["details"]["project"] for a in alert_records(world)} == {"support"}


def test_each_project_sleeps_after_its_own_idle_ttl(tmp_path: Path) -> None:
    from datetime import timedelta

    world = world_at(tmp_path, IDLE_TTL="2h")
    settings_file(world, "support", {"idle_ttl": "20m"})
    support = world.live_run("support/a.jsonl", SUPPORT)
    sales = world.live_run("sales/b.jsonl", SALES)
    world.skipped += timedelta(minutes=40)
    report = world.life.on_sweep()
    assert report.deleted == ["support"], report
    assert world.get(support.run_id).state == State.TORN_DOWN
    assert world.get(sales.run_id).state == State.LIVE
    assert [(a["alert_class"], a["details"]["project"]) for a in alert_records(world)] == [
        ("endpoint.torn_down", "support")]


def test_the_page_api_and_cli_show_runs_by_project_with_human_durations_and_no_made_up_savings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    import azure.functions as func

    import functions.runs_api
    from cli.ops import status_text
    from shared import ops

    world = world_at(tmp_path, IDLE_TTL="1h")
    support = world.live_run("support/a.jsonl", SUPPORT)
    world.live_run("sales/b.jsonl", SALES)
    world.upload("sales/c.jsonl", b"".join(LINES[20:50]))  # training
    world.skipped += timedelta(hours=2, minutes=14)
    settings_file(world, "sales", {"idle_ttl": "1d"})  # later runs only: the live sales run keeps 1 h
    world.life.on_sweep()
    (alert,) = [a for a in alert_records(world) if a["details"]["project"] == "support"]
    assert re.search(r"after 2 h \d+ min without requests \(its deployment billed 2 h \d+ min\)",
                     alert["summary"]) and "saved" not in alert["summary"]
    assert "0:" not in alert["summary"]

    monkeypatch.setattr(functions.runs_api, "lifecycle", lambda: world.life)
    request = func.HttpRequest("GET", "/api/runs", params={"project": "support"}, body=b"")
    only = json.loads(functions.runs_api.runs_list(request).get_body())
    assert [r["run_id"] for r in only["runs"]] == [support.run_id]
    assert [p["name"] for p in only["projects"]] == ["support"]
    assert only["projects"][0]["state"] == "asleep" and only["projects"][0]["billed_hours"] > 2

    view = ops.overview(world.life)
    states = {p["name"]: p["state"] for p in view["projects"]}
    # sales: asleep, and a newer upload is training (training shows first); the default never deployed.
    assert states == {"autopilot-chat": "never deployed", "sales": "training", "support": "asleep"}
    page = ops.render_status_page(view)
    assert "<h2>Projects</h2>" in page and 'project <code>sales</code>' in page
    assert page.index('project <code>sales</code>') < page.index('project <code>support</code>')
    assert "h saved" not in page and re.search(r"billed 2 h \d+ min · asleep \d+ s since", page)
    text = status_text(ops.overview(world.life, project="support"))
    assert text.startswith("project support: asleep") and "sales" not in text


def test_the_front_doors_routes_honour_a_project_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.functions as func

    import functions.front_door

    world = world_at(tmp_path)
    support = world.live_run("support/a.jsonl", SUPPORT)
    world.live_run("sales/b.jsonl", SALES)
    door = FrontDoor(world.life, KEY, poll_s=0.01)
    monkeypatch.setattr(functions.front_door, "front", lambda: door)
    headers = {"Authorization": f"Bearer {project_key(KEY, 'support')}"}

    def chat(model: str) -> func.HttpResponse:
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
        return functions.front_door.front_chat(func.HttpRequest("POST", "/api/v1/chat/completions", body=body,
                                                                headers=headers))

    listed = functions.front_door.front_models(func.HttpRequest("GET", "/api/v1/models", body=b"",
                                                                headers=headers))
    assert [m["id"] for m in json.loads(listed.get_body())["data"]] == ["support"]
    mine = chat("support")
    assert mine.status_code == 200
    answer = json.loads(mine.get_body())["choices"][0]["message"]["content"]
    assert answer == f"answer from {support.deployment}"
    theirs = chat("sales")
    assert theirs.status_code == 404 and json.loads(theirs.get_body())["error"]["code"] == "model_not_found"
    headers["Authorization"] = "Bearer support.not-the-mac"
    assert chat("support").status_code == 401


def test_start_from_live_trains_on_from_the_projects_own_live_model(tmp_path: Path) -> None:
    from shared.platforms.port import ModelRef

    world = world_at(tmp_path)
    support = world.live_run("support/a.jsonl", SUPPORT)
    world.live_run("sales/a.jsonl", SALES)
    settings_file(world, "support", {"start_from": "live"})  # every later support run trains on from live
    again = world.upload("support/b.jsonl", b"".join(LINES[4:34]))
    spec = world.platform.specs[again.job_name]
    assert spec.start_from == ModelRef(support.model_name, support.model_version)
    # A project with nothing live yet cannot start from another project's model: refused, saying so.
    world.life.on_upload(world.drop("fresh/c.jsonl.manifest.json", b'{"start_from": "live"}'))
    world.life.on_upload(world.drop("fresh/c.jsonl", b"".join(LINES[6:36])))
    world.drain()
    (fresh,) = [r for r in world.ledger.all() if r.project == "fresh" and r.run_id.startswith("run-")]
    assert fresh.state == State.FAILED and "endpoint fresh serves no fine-tune yet" in fresh.error
