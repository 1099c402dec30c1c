"""on_upload's ways in: manifests (with and without a test file), budgets, forced re-runs, bad manifests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.ledger import State
from shared.lifecycle import Lifecycle, Upload
from shared.settings import Settings
from shared.wiring import build_lifecycle
from tests.fakes.platform import InMemoryPlatform

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"
ROWS = SAMPLE.read_bytes().splitlines(keepends=True)
pytestmark = pytest.mark.integration


@pytest.fixture
def app(settings_env: dict[str, str]) -> Iterator[tuple[Lifecycle, InMemoryPlatform]]:
    platform = InMemoryPlatform()
    yield (
        build_lifecycle(
            Settings.from_env({**settings_env, "MAX_TOKENS_PER_RUN": "200000"}), platform=platform
        ),
        platform,
    )


def drop(life: Lifecycle, name: str, data: bytes, **metadata: str) -> Upload:
    container = life.ctx.blobs.get_container_client(life.ctx.settings.incoming_container)
    if not container.exists():
        container.create_container()
    container.upload_blob(name, data, overwrite=True, metadata=metadata or None)
    return Upload(container.container_name, name)


def staged_rows(life: Lifecycle, uri: str) -> int:
    container, name = uri.split("/")[-3], "/".join(uri.split("/")[-2:])
    return len(life.ctx.blobs.get_blob_client(container, name).download_blob().readall().splitlines())


def test_manifest_first_then_data_starts_one_run_with_the_overrides(
    app: tuple[Lifecycle, InMemoryPlatform],
) -> None:
    life, platform = app
    manifest = {
        "data": "train.jsonl",
        "test": "test.jsonl",
        "base_model": "my-model",
        "epochs": 2,
        "hyperparameters": {"lora_r": 16, "learning_rate": 0.001},
    }
    outcome = life.on_upload(drop(life, "team/run.manifest.json", json.dumps(manifest).encode()))
    assert outcome.startswith("manifest team/run.manifest.json: waiting for")
    assert "waiting for team/test.jsonl" in life.on_upload(
        drop(life, "team/train.jsonl", b"".join(ROWS[:40]))
    )
    assert "submitted" in life.on_upload(drop(life, "team/test.jsonl", b"".join(ROWS[40:])))

    (spec,) = platform.specs.values()
    assert spec.base_model == "my-model"
    assert spec.parameters["num_train_epochs"] == 2 and spec.parameters["lora_r"] == 16
    (run,) = [r for r in life.ledger.all() if r.state == State.SUBMITTED]
    assert (run.fields["train_rows"], run.fields["test_rows"]) == (40, 8)
    assert staged_rows(life, run.fields["train_uri"]) == 40 and staged_rows(life, run.fields["test_uri"]) == 8
    # The same data with other settings is another run, not a duplicate.
    assert run.fields["manifest"] == "team/run.manifest.json"


def test_a_manifest_with_an_unknown_parameter_is_refused_before_any_work(
    app: tuple[Lifecycle, InMemoryPlatform],
) -> None:
    life, platform = app
    drop(life, "x.jsonl", b"".join(ROWS))
    outcome = life.on_upload(drop(life, "x.jsonl.manifest.json", b'{"hyperparameters": {"lora_rank": 4}}'))
    assert outcome.startswith("rejected manifest") and "lora_rank" in outcome
    assert platform.effects["submit"] == 0
    alerts = (life.ctx.settings.data_dir / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(a)["alert_class"] for a in alerts] == ["upload.rejected"]


def test_over_the_token_budget_is_rejected_with_the_numbers(settings_env: dict[str, str]) -> None:
    platform = InMemoryPlatform()
    life = build_lifecycle(
        Settings.from_env({**settings_env, "MAX_TOKENS_PER_RUN": "100"}), platform=platform
    )
    outcome = life.on_upload(drop(life, "big.jsonl", b"".join(ROWS)))
    assert outcome.startswith("rejected") and platform.effects["submit"] == 0
    (run,) = list(life.ledger.all())
    assert run.state == State.REJECTED and "100" in json.dumps(run.fields["errors"])


def test_force_metadata_retrains_the_same_content(app: tuple[Lifecycle, InMemoryPlatform]) -> None:
    life, platform = app
    life.on_upload(drop(life, "a.jsonl", b"".join(ROWS)))
    assert "duplicate" in life.on_upload(drop(life, "b.jsonl", b"".join(ROWS)))
    assert "submitted" in life.on_upload(drop(life, "c.jsonl", b"".join(ROWS), force="true"))
    assert platform.effects["submit"] == 2
