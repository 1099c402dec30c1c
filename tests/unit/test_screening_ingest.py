"""Screening through the ingest handler, on the in-memory world: each policy end to end (reject quarantines
with one alert, redact stages placeholders, report trains as is), the policy on the run and the page, and no
planted value anywhere the app writes but the upload itself and its quarantined copy."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from shared.lifecycle import Result
from shared.ops import overview, render_status_page
from shared.runs import State
from shared.runs.codec import to_row
from shared.staging import BlobRef, read_all
from tests.fakes.world import SAMPLE, MemoryWorld
from tests.unit.test_dataset_screening import SECRET_PART, VALUES

ROOT = Path(__file__).resolve().parents[2]
SECRET = VALUES["aws_access_key"]
PERSONAL = (VALUES["email"], VALUES["phone_number"], VALUES["iban"])


def chat(user: str, assistant: str) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": user},
                                    {"role": "assistant", "content": assistant}]}).encode() + b"\n"


def with_rows(*rows: bytes) -> bytes:
    """The demo data with rows planted after its 10th line."""
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    return b"".join(lines[:10]) + b"".join(rows) + b"".join(lines[10:])


PERSONAL_ROW = chat(f"I am {VALUES['email']}, call me on {VALUES['phone_number']}",
                    f"Refund sent to IBAN {VALUES['iban']}.")
SECRET_ROW = chat("Here is our key", f"Thanks, I will use {SECRET} for the export.")


def staged_bytes(world: MemoryWorld) -> bytes:
    container = world.settings.staged_container
    names = world.staging.names(container)
    return b"".join(read_all(world.staging, BlobRef(container, name)) for name in names)


def test_personal_data_is_redacted_by_default_and_the_original_kept_in_incoming(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    data = with_rows(PERSONAL_ROW)
    run = world.upload("chats.jsonl", data)
    assert run.state is State.SUBMITTED
    staged = staged_bytes(world)
    assert all(value.encode() not in staged for value in PERSONAL)
    assert b"I am <EMAIL>, call me on <PHONE_NUMBER>" in staged and b"Refund sent to IBAN <IBAN>." in staged
    assert run.screening == {"secrets": "reject", "personal_data": "redact"}
    assert run.sensitive == {"email": 1, "phone_number": 1, "iban": 1}
    assert read_all(world.staging, BlobRef(world.settings.incoming_container, "chats.jsonl")) == data
    assert world.alerts() == []


def test_a_secret_rejects_the_upload_into_quarantine_with_one_alert(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    outcome = world.life.on_upload(world.drop("chats.jsonl", with_rows(SECRET_ROW)))
    assert (outcome.result, outcome.state) == (Result.REJECTED, State.REJECTED)
    run = world.get(outcome.run_id)
    assert [(e["line"], e["code"]) for e in run.errors] == [(11, "sensitive_data")]
    assert run.sensitive == {"aws_access_key": 1} and run.screening["secrets"] == "reject"
    assert world.alerts() == ["upload.rejected"]
    assert world.staging.properties(BlobRef(world.settings.incoming_container, "chats.jsonl")) is None
    report = json.loads(read_all(world.staging, BlobRef(world.settings.rejected_container,
                                                         run.quarantined_to + ".report.json")))
    assert report["sensitive"]["findings"][0]["masked"] == "AKIA…(20 chars)"
    assert list(world.staging.names(world.settings.staged_container)) == []
    assert world.platform.effects["submit"] == 0
    world.life.on_upload(BlobRef(world.settings.incoming_container, "chats.jsonl"))  # a late redelivery
    assert world.alerts() == ["upload.rejected"]


def test_a_manifest_chooses_report_and_the_values_train_as_they_are(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path, SCREEN_SECRETS="redact")
    manifest = {"screening": {"personal_data": "report"}}
    world.life.on_upload(world.drop("chats.jsonl.manifest.json", json.dumps(manifest).encode()))
    run = world.upload("chats.jsonl", with_rows(PERSONAL_ROW, SECRET_ROW))
    assert run.state is State.SUBMITTED
    staged = staged_bytes(world)
    assert all(value.encode() in staged for value in PERSONAL) and SECRET.encode() not in staged
    assert b"<AWS_ACCESS_KEY>" in staged
    assert run.screening == {"secrets": "redact", "personal_data": "report"}
    page = render_status_page(overview(world.life))
    shown = page[page.index("<th>screening</th>"):]
    shown = shown[:shown.index("</tr>")]
    assert "secrets redact, personal data report; found: " in shown
    assert all(f"{kind} 1" in shown for kind in ("email", "phone number", "iban", "aws access key"))


def test_a_manifest_s_policy_makes_another_run_of_the_same_data(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    first = world.upload("a.jsonl", with_rows(PERSONAL_ROW))
    world.life.on_upload(world.drop("b.jsonl.manifest.json", b'{"screening": {"personal_data": "report"}}'))
    second = world.upload("b.jsonl", with_rows(PERSONAL_ROW))
    assert second.state is State.SUBMITTED and second.run_id != first.run_id


@pytest.mark.integration  # runs the CLI in a process of its own
def test_nothing_sensitive_reaches_logs_alerts_reports_the_ledger_or_the_page(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    every_kind = b"".join(chat(f"note {i}", f"value:\n{value}\nok")
                          for i, value in enumerate(VALUES.values()))
    world = MemoryWorld(tmp_path, SCREEN_SECRETS="reject")
    rejected = world.life.on_upload(world.drop("secrets.jsonl", with_rows(every_kind)))
    kept = world.upload("personal.jsonl", with_rows(PERSONAL_ROW))
    assert rejected.result is Result.REJECTED and kept.state is State.SUBMITTED
    run = world.get(rejected.run_id)
    written = [caplog.text, json.dumps(world.alerts()), (tmp_path / "alerts.jsonl").read_text(),
               json.dumps(overview(world.life), default=str), render_status_page(overview(world.life)),
               staged_bytes(world).decode(), rejected.detail or ""]
    written += [json.dumps(to_row(r).columns) for r in world.ledger.all()]
    rejected_container = world.settings.rejected_container
    written += [read_all(world.staging, BlobRef(rejected_container, name)).decode()
                for name in world.staging.names(rejected_container) if name != run.quarantined_to]
    cli = data_file = tmp_path / "secrets.jsonl"
    data_file.write_bytes(with_rows(every_kind))
    for args in (["--json"], []):
        done = subprocess.run([sys.executable, "-m", "cli", "validate", str(cli), *args], check=False,
                              capture_output=True, text=True, timeout=120, cwd=tmp_path,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 1, done.stderr
        written += [done.stdout, done.stderr]
    everything = "\n".join(written)
    assert "AKIA…(20 chars)" in everything and "j***@***.com" in everything  # the masks are there
    for kind, value in VALUES.items():
        assert SECRET_PART.get(kind, value) not in everything, kind
