"""Upload manifests: parsed strictly, every mistake named."""

from __future__ import annotations

import pytest

from shared.dataset import Limits, ManifestError, is_manifest, parse_manifest
from shared.dataset.manifest import manifest_name_for


def test_full_manifest() -> None:
    raw = b"""{"base_model": "Phi-4", "run_name": "support v3", "epochs": 2, "test_fraction": 0.1,
               "max_tokens_per_run": 5000000, "hyperparameters": {"learning_rate": 5e-6, "apply_lora": true},
               "tags": {"team": "support"}}"""
    m = parse_manifest(raw, "team/chats.jsonl.manifest.json")
    assert m.data == "team/chats.jsonl"
    assert (m.base_model, m.run_name, m.epochs, m.test_fraction) == ("Phi-4", "support v3", 2, 0.1)
    assert m.hyperparameters == {"learning_rate": 5e-6, "apply_lora": True}
    limits = m.limits(Limits())
    assert (limits.epochs, limits.test_fraction, limits.max_tokens_per_run) == (2, 0.1, 5_000_000)
    assert limits.test_rows_max == Limits().test_rows_max


def test_empty_manifest_and_explicit_data() -> None:
    assert parse_manifest(b"{}", "a.jsonl.manifest.json").data == "a.jsonl"
    assert parse_manifest(b'{"data": "b.parquet"}', "x/run.manifest.json").data == "x/b.parquet"
    assert parse_manifest(b"{}", "a.jsonl.manifest.json").limits(Limits()) == Limits()


def test_names() -> None:
    assert is_manifest("a/b.jsonl.manifest.json") and is_manifest("B.MANIFEST.JSON")
    assert not is_manifest("b.jsonl")
    assert manifest_name_for("b.jsonl") == "b.jsonl.manifest.json"


@pytest.mark.parametrize(("raw", "says"), [
    (b"{", "not valid JSON"),
    (b"[]", "JSON object"),
    (b'{"epoch": 2}', "did you mean 'epochs'"),
    (b'{"colour": 2}', "known keys"),
    (b'{"epochs": 0}', "'epochs' must be a whole number from 1"),
    (b'{"epochs": true}', "'epochs'"),
    (b'{"epochs": 1.5}', "'epochs'"),
    (b'{"test_fraction": 1}', "between 0 and 1"),
    (b'{"base_model": ""}', "'base_model' must be a non-empty string"),
    (b'{"data": "../other.jsonl"}', "own folder"),
    (b'{"hyperparameters": {"Learning-Rate": 1}}', "lower_snake_case"),
    (b'{"hyperparameters": {"lr": [1]}}', "string, number or boolean"),
    (b'{"hyperparameters": []}', "object of name"),
    (b'{"tags": {"a": 1}}', "string: string"),
])
def test_mistakes_are_named(raw: bytes, says: str) -> None:
    with pytest.raises(ManifestError, match=r"m\.manifest\.json") as caught:
        parse_manifest(raw, "m.manifest.json")
    assert says in str(caught.value)


def test_oversized_manifest() -> None:
    with pytest.raises(ManifestError, match="at most"):
        parse_manifest(b" " * 70_000, "m.manifest.json")
