"""Every key a manifest accepts changes the run it starts (one case per key; a new key needs a case here).

On the in-memory backends: the manifest arrives first, then the data; the job spec the platform received and
the run the ledger holds show each key's effect, next to the same upload without the manifest key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.dataset.manifest import _KEYS
from shared.lifecycle import Outcome, Result
from shared.platforms.port import JobSpec
from shared.runs import Run, State
from tests.fakes.world import SAMPLE, MemoryWorld

ROWS = SAMPLE.read_bytes().splitlines(keepends=True)


def start(tmp_path: Path, manifest: dict[str, Any], **env: str) -> tuple[MemoryWorld, Outcome]:
    """A fresh app; the manifest, then its data (chats.jsonl, plus held.jsonl when a test file is named)."""
    world = MemoryWorld(tmp_path / str(len(list(tmp_path.iterdir()))), **env)
    waiting = world.life.on_upload(world.drop("chats.jsonl.manifest.json", json.dumps(manifest).encode()))
    assert waiting.result in (Result.WAITING, Result.REJECTED), waiting
    if "test" in manifest:
        world.life.on_upload(world.drop("held.jsonl", b"".join(ROWS[:5])))
    return world, world.life.on_upload(world.drop(manifest.get("data", "chats.jsonl")))


def submitted(world: MemoryWorld, outcome: Outcome) -> tuple[Run, JobSpec]:
    assert outcome.result is Result.QUEUED, outcome
    world.drain()  # the submit step
    run = world.get(outcome.run_id)
    assert run.state is State.SUBMITTED, run
    return run, world.platform.specs[run.job_name]


Check = Callable[[MemoryWorld, Outcome, Run, JobSpec], None]


def _data(world: MemoryWorld, outcome: Outcome, plain: Run, _: JobSpec) -> None:
    run, _spec = submitted(world, outcome)
    assert run.upload.endswith("/other.jsonl")


def _test(world: MemoryWorld, outcome: Outcome, plain: Run, _: JobSpec) -> None:
    run, _spec = submitted(world, outcome)
    assert run.test_upload.endswith("/held.jsonl") and run.test_rows == 5 and run.train_rows == len(ROWS)


def _base_model(world: MemoryWorld, outcome: Outcome, plain: Run, plain_spec: JobSpec) -> None:
    run, spec = submitted(world, outcome)
    assert spec.base_model == run.base_model == "my-base" != plain_spec.base_model


def _run_name(world: MemoryWorld, outcome: Outcome, plain: Run, plain_spec: JobSpec) -> None:
    run, spec = submitted(world, outcome)
    assert run.run_name == "support v3" and "support-v3" in spec.display_name
    assert "chats" in plain_spec.display_name and "chats" not in spec.display_name


def _epochs(world: MemoryWorld, outcome: Outcome, plain: Run, plain_spec: JobSpec) -> None:
    run, spec = submitted(world, outcome)
    assert spec.parameters["num_train_epochs"] == 3
    assert run.estimated_tokens == 3 * (plain.estimated_tokens or 0), "the budget counts every epoch"


def _test_fraction(world: MemoryWorld, outcome: Outcome, plain: Run, _: JobSpec) -> None:
    run, _spec = submitted(world, outcome)
    assert (run.test_rows or 0) > 3 * (plain.test_rows or 0) and run.rows == plain.rows


def _max_tokens_per_run(world: MemoryWorld, outcome: Outcome, plain: Run, _: JobSpec) -> None:
    assert (outcome.result, outcome.state) == (Result.REJECTED, State.REJECTED)
    (code,) = {e["code"] for e in world.get(outcome.run_id).errors}
    assert code == "token_budget_exceeded" and world.platform.effects["submit"] == 0


def _hyperparameters(world: MemoryWorld, outcome: Outcome, plain: Run, plain_spec: JobSpec) -> None:
    _, spec = submitted(world, outcome)
    assert spec.parameters["lora_r"] == 4 and "lora_r" not in plain_spec.parameters


def _tags(world: MemoryWorld, outcome: Outcome, plain: Run, plain_spec: JobSpec) -> None:
    run, spec = submitted(world, outcome)
    assert spec.tags["team"] == "support" and run.tags == {"team": "support"}
    assert spec.tags["autopilot-run-id"] == run.run_id and "team" not in plain_spec.tags


def _screening(world: MemoryWorld, outcome: Outcome, plain: Run, _: JobSpec) -> None:
    run, _spec = submitted(world, outcome)
    assert run.screening == {"secrets": "reject", "personal_data": "report"} != plain.screening
    assert run.run_id != plain.run_id, "another policy stages other files: not a duplicate"


def _start_from(world: MemoryWorld, outcome: Outcome, plain: Run, _: JobSpec) -> None:
    assert outcome.result is Result.QUEUED and world.get(outcome.run_id).start_from == "live"
    world.drain()  # the submit step: nothing is live on the endpoint yet, so there is nothing to start from
    run = world.get(outcome.run_id)
    assert run.state is State.FAILED and "serves no fine-tune yet" in run.error
    assert world.platform.effects["submit"] == 0 and not plain.start_from


def _train_weight_zero_turns(world: MemoryWorld, outcome: Outcome, plain: Run, _: JobSpec) -> None:
    # Only where the platform cannot honour weights does the key change anything (test_weights below).
    run, spec = submitted(world, outcome)
    assert run.rows == plain.rows and spec.parameters == {}


CASES: dict[str, tuple[Any, Check]] = {
    "start_from": ("live", _start_from),
    "train_weight_zero_turns": (True, _train_weight_zero_turns),
    "data": ("other.jsonl", _data),
    "test": ("held.jsonl", _test),
    "base_model": ("my-base", _base_model),
    "run_name": ("support v3", _run_name),
    "epochs": (3, _epochs),
    "test_fraction": (0.5, _test_fraction),
    "max_tokens_per_run": (100, _max_tokens_per_run),
    "hyperparameters": ({"lora_r": 4}, _hyperparameters),
    "tags": ({"team": "support"}, _tags),
    "screening": ({"personal_data": "report"}, _screening),
}


def test_every_manifest_key_has_a_case() -> None:
    assert set(CASES) == set(_KEYS)


@pytest.mark.parametrize("key", sorted(CASES))
def test_the_manifest_key_takes_effect(tmp_path: Path, key: str) -> None:
    value, check = CASES[key]
    baseline, plain = start(tmp_path, {})
    plain_run, plain_spec = submitted(baseline, plain)
    world, outcome = start(tmp_path, {key: value})
    check(world, outcome, plain_run, plain_spec)


def test_a_manifest_may_lower_the_operator_s_token_budget_but_not_raise_it(tmp_path: Path) -> None:
    world, outcome = start(tmp_path, {"max_tokens_per_run": 10**12}, MAX_TOKENS_PER_RUN="100")
    assert outcome.result is Result.REJECTED
    assert "100 tokens per run" in json.dumps(world.get(outcome.run_id).errors)


def test_a_refused_manifest_keeps_its_data_from_training_without_it(tmp_path: Path) -> None:
    world, outcome = start(tmp_path, {"tags": {"autopilot-run-id": "mine"}})
    assert (outcome.result, outcome.state) == (Result.REJECTED, State.REJECTED)
    assert "its manifest chats.jsonl.manifest.json was rejected" in world.get(outcome.run_id).error
    assert sum("reserved" in r.error for r in world.ledger.all()) == 2, "the manifest, then its data"
    assert world.platform.effects["submit"] == 0
    assert list(world.staging.names(world.settings.staged_container)) == [], "nothing staged"
