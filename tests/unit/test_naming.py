"""Names are deterministic (retries find their own effects) and valid for both platforms."""

from __future__ import annotations

import re

from shared.lifecycle import naming


def test_same_content_same_run_and_forced_runs_differ() -> None:
    sha = "ab" * 32
    assert naming.run_id(sha) == naming.run_id(sha) == "run-abababababab"
    assert naming.run_id(sha, "0123456789") != naming.run_id(sha)


def test_deployment_and_model_names_follow_azure_rules() -> None:
    deployment = naming.deployment_name("run-abababababab-012345")
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,30}[a-z0-9]", deployment)
    name = naming.model_name("Phi-4", "team/Ünïcode data (v2).jsonl")
    assert re.fullmatch(r"[A-Za-z0-9-]+", name) and name.startswith("ft-Phi-4-")


def test_upload_key_changes_with_the_blob_version() -> None:
    assert naming.upload_key("c", "n", "e1") != naming.upload_key("c", "n", "e2")
