"""`autopilot validate`: exit codes and the --json shape, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
KEYS = {"valid", "rows", "errors", "error_count", "warnings", "stats", "content_sha256", "estimated_tokens"}


ROOT = Path(__file__).resolve().parents[2]
UPLOAD_SETTINGS = ("MIN_TRAINING_ROWS", "MAX_TOKENS_PER_RUN", "TEST_FRACTION", "AUTOPILOT_PLATFORM",
                   "SCREEN_SECRETS", "SCREEN_PERSONAL_DATA")


def autopilot(*args: str, cwd: Path | None = None, **settings: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, in `cwd` (default: here, where there is no local.settings.json) with the
    default upload settings unless `settings` names some."""
    env = {k: v for k, v in os.environ.items() if k not in UPLOAD_SETTINGS}
    env.update(settings, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          timeout=60, check=False, cwd=cwd or Path(__file__).parent, env=env)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.jsonl"
    path.write_bytes(GOOD * 20)
    return path


def test_valid_file_exits_0_with_json(good: Path) -> None:
    done = autopilot("validate", str(good), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) >= KEYS
    assert report["valid"] is True and report["rows"] == 20 and report["error_count"] == 0
    assert len(report["content_sha256"]) == 64


def test_invalid_file_exits_1_and_lists_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(GOOD * 12 + b"{oops\n" + b'{"messages": []}\n')
    done = autopilot("validate", str(path), "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["valid"] is False and report["error_count"] == 2
    found = [(e["line"], e["code"]) for e in report["errors"]]
    assert found == [(13, "invalid_json"), (14, "messages_empty")]
    text = autopilot("validate", str(path))
    assert text.returncode == 1
    assert "REJECTED" in text.stdout and "line 13" in text.stdout and "invalid_json" in text.stdout


def test_the_upload_settings_apply_as_at_ingest(tmp_path: Path) -> None:
    path = tmp_path / "few.jsonl"
    path.write_bytes(GOOD * 6)  # 5 training rows + 1 held out: under MIN_TRAINING_ROWS (10 by default)
    done = autopilot("validate", str(path), "--json")
    assert done.returncode == 1
    assert [e["code"] for e in json.loads(done.stdout)["errors"]] == ["too_few_training_rows"]
    assert autopilot("validate", str(path), "--json", MIN_TRAINING_ROWS="5").returncode == 0
    over = autopilot("validate", str(path), "--json", MAX_TOKENS_PER_RUN="50")
    assert [e["code"] for e in json.loads(over.stdout)["errors"]] == ["too_few_training_rows",
                                                                     "token_budget_exceeded"]
    # ... read from a local.settings.json too, as the function host reads it
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {"MIN_TRAINING_ROWS": "3"}}))
    assert autopilot("validate", str(path), cwd=tmp_path).returncode == 0
    bad = autopilot("validate", str(path), MIN_TRAINING_ROWS="0")
    assert bad.returncode == 2 and "MIN_TRAINING_ROWS" in bad.stderr


def test_readable_report_without_json(good: Path) -> None:
    done = autopilot("validate", str(good))
    assert done.returncode == 0
    assert "VALID" in done.stdout and "20 rows" in done.stdout


def test_usage_and_io_errors_exit_2(tmp_path: Path) -> None:
    assert autopilot().returncode == 2
    assert autopilot("validate").returncode == 2
    assert autopilot("nonsense").returncode == 2
    missing = autopilot("validate", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert autopilot("validate", str(tmp_path)).returncode == 2


def test_parquet_by_extension(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"messages": [[{"role": "user", "content": "q"},
                                           {"role": "assistant", "content": "a"}]] * 12}), path)
    done = autopilot("validate", str(path), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["rows"] == 12


def test_jsonl_gz_and_a_gzip_body_under_a_plain_name(tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "chats.jsonl.gz"
    packed.write_bytes(gzip.compress(GOOD * 12))
    done = autopilot("validate", str(packed), "--json", "--workers", "2")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"] == 12 and report["format"] == "jsonl.gz"
    misnamed = tmp_path / "chats.jsonl"
    misnamed.write_bytes(packed.read_bytes())
    done = autopilot("validate", str(misnamed))
    assert done.returncode == 1
    assert "gzip_compressed" in done.stdout and "name it .jsonl.gz" in done.stdout
    assert "UTF-8" not in done.stdout


def test_json_lists_sensitive_findings_masked_with_counts_by_kind(tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    row = (b'{"messages": [{"role": "user", "content": "I am jane.doe@contoso.com"}, '
           b'{"role": "assistant", "content": "Noted, jane.doe@contoso.com and +44 7911 123456."}]}\n')
    path.write_bytes(GOOD * 12 + row)
    done = autopilot("validate", str(path), "--json")
    assert done.returncode == 0, done.stderr  # personal data is redacted by default: still valid
    sensitive = json.loads(done.stdout)["sensitive"]
    assert [(f["line"], f["message"], f["kind"], f["masked"]) for f in sensitive["findings"]] == [
        (13, 1, "email", "j***@***.com"), (13, 2, "email", "j***@***.com"),
        (13, 2, "phone_number", "+** **** ****56")]
    assert sensitive["by_kind"] == {"email": 2, "phone_number": 1} and sensitive["count"] == 3
    assert sensitive["policy"] == {"secrets": "reject", "personal_data": "redact"}
    assert "contoso.com" not in done.stdout and "7911" not in done.stdout
    rejecting = autopilot("validate", str(path), SCREEN_PERSONAL_DATA="reject")
    assert rejecting.returncode == 1
    assert "line 13" in rejecting.stdout and "sensitive_data" in rejecting.stdout
