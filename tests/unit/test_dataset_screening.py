"""Screening inside the scan: each kind found by line and message and shown masked, numbers that are nothing
sensitive left alone, ordinary chat quiet, and each policy's effect on the report and the staged rows."""

from __future__ import annotations

import dataclasses
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.screening_corpus import MAKERS, ordinary, planted
from shared.azurite import DEVELOPMENT_STORAGE
from shared.dataset import Limits, ManifestError, MemorySink, parse_manifest, scan, scan_path
from shared.dataset.report import Report
from shared.dataset.screening import Screening, ScreeningError, parse_screening
from shared.dataset.screening.prefilter import Prefilter, _re_scan, prefilter
from shared.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
REPORT_ALL = Screening("report", "report")
US_NATIONAL = re.compile(r"\(?\d{3}\)?[ -]\d{3}-\d{4}")

# One value of every kind, as people paste them (the values are made up; the checks pass on them).
VALUES = {
    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
                   "-----END OPENSSH PRIVATE KEY-----",
    "aws_access_key": "AKIAZ7QW3LN4XK2PB9RT",
    "github_token": "ghp_Zq8wL2mN4vB6xC1rT5yU7iO9pA3sD0fG2hJk",
    "gitlab_token": "glpat-Xy7Kp2Lm9Qw4Rt6Zv8Bn",
    "slack_token": "xoxb-248163264128-512102420484-Qm7Rt2Yx9Lp4Kw8Zn3Vb6Hc",
    "stripe_key": "sk_live_51HqZr2Lk8Xw4Pn7Tm3Vb9Yc",
    "google_api_key": "AIzaSyB7qL2xN9mK4pR8tW3vZ6yC1dF5gH0jQeS",
    "azure_storage_key": "DefaultEndpointsProtocol=https;AccountName=contosodata;AccountKey="
                         "q3Lx9Zp2Wm7Nk4Rt8Yv1Bc6Hd0Jf5Gs3Ae9Kl2Mn7Pq4Rs8Tu1Vw6Xy0Zb5Cd3Ef9Gh2Ij7Kl4Mn8Op1Qr6St0Uv5Wx3Yz"
                         "9Ab2Cd==;EndpointSuffix=core.windows.net",
    "sas_token": "https://contosodata.blob.core.windows.net/data/chats.jsonl?sv=2022-11-02&sp=r"
                 "&se=2026-01-01T00:00:00Z&sig=Qm7Rt2Yx9Lp4Kw8Zn3Vb6Hc1Df5Gj0Ks2Lt%2BNu4Pv%3D",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MjQyNDIiLCJuYW1lIjoiSmFuZSJ9."
           "Xq3Lm8Zp2Wn7Kr4Tv9Yb1Cd6Hf0Jg5",
    "password": "DB_PASSWORD=Tq7xLm2Vz9Kp",
    "email": "jane.doe@contoso.com",
    "phone_number": "+44 7911 123456",
    "card_number": "4539 1488 0343 6467",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ssn": "536-22-1234",
    "ip_address": "81.2.69.160",
}
# What of each value must never be shown (a key's prefix is its format's name, not the secret).
SECRET_PART = {"azure_storage_key": "q3Lx9Zp2Wm7Nk4Rt8Yv1", "sas_token": "Qm7Rt2Yx9Lp4Kw8Zn3Vb6",
               "password": "Tq7xLm2Vz9Kp", "private_key": "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"}


def chat(*turns: str) -> bytes:
    roles = ["user", "assistant"] * len(turns)
    return orjson.dumps({"messages": [{"role": r, "content": t} for r, t in zip(roles, turns, strict=False)]})


def scanned(data: bytes, screening: Screening | None = REPORT_ALL, **limits: Any) -> tuple[Report, bytes]:
    train, test = MemorySink(), MemorySink()
    report = scan([data], Limits(screening=screening, min_training_rows=1, test_fraction=0.05, **limits),
                  train, test)
    return report, (train.value or b"") + (test.value or b"")


def filler(n: int) -> bytes:
    return b"".join(chat(f"question {i}", f"answer {i}") + b"\n" for i in range(n))


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_each_kind_is_found_by_line_and_message_and_masked(kind: str) -> None:
    value = VALUES[kind]
    data = filler(3) + chat("hello", f"Sure, here it is:\n{value}\nAnything else?") + b"\n" + filler(3)
    report, _ = scanned(data)
    (finding,) = report.sensitive["findings"]
    assert (finding["line"], finding["message"], finding["kind"]) == (4, 2, kind)
    assert report.sensitive["by_kind"] == {kind: 1} and report.sensitive["count"] == 1
    shown = report.to_json() + report.to_text()
    hidden = SECRET_PART.get(kind, value)
    assert hidden not in shown and hidden not in finding["masked"], finding["masked"]
    assert report.valid, "report: trained as is"


@pytest.mark.parametrize("text", [
    "order 123456789012 ships today",  # a long id
    "card 4539 1488 0343 6468 expired",  # Luhn-invalid
    "IBAN DE89 3704 0044 0532 0130 01 on file",  # checksum-invalid
    "call 555-123-4567 tomorrow",  # not a valid NANP number
    "dial 4155552671 now",  # a bare run of digits is no phone number
    "at 2026-01-15 10:30, ref 1234567",  # dates, times, short ids
    "SSN 000-12-3456 is not issued",  # an SSN never issued
    "the router is 192.168.1.10 and DNS 127.0.0.1",  # private and loopback addresses
    "Python 3.11.7 and version 2.14.3.1",  # version numbers
    "id 3f2a9c4e5b6d7e8f1234567890abcdef, total 1,234,567.89",
    "write to someone@example.com or a@b.test",  # documentation domains
    "icon@2x.png",
    "password: hunter",  # a word, not a credential
    "tokens = tokenizer.encode(text)",
])
def test_what_only_looks_sensitive_is_not_reported(text: str) -> None:
    report, _ = scanned(filler(2) + chat("q", text) + b"\n")
    assert report.sensitive["findings"] == []


# The shape of Azure OpenAI's fine-tuning sample (a sarcastic factual chatbot), with its kind of content.
AZURE_SAMPLE = [
    ("What's the capital of France?", "Paris, as if everyone doesn't know that already."),
    ("Who wrote 'Romeo and Juliet'?", "Oh, just some guy named William Shakespeare. Ever heard of him?"),
    ("How far is the Moon from Earth?", "Around 384,400 kilometers. Give or take a few, like that matters."),
    ("What is 15% of 240?", "36. Math is hard, I know."),
    ("When did World War II end?", "1945, on September 2nd. History class, remember?"),
    ("What's the boiling point of water in Fahrenheit?", "212 degrees Fahrenheit at sea level, genius."),
    ("How many bones are in the human body?", "206. Counted them myself, obviously."),
]


def test_ordinary_chat_and_the_demo_data_raise_nothing() -> None:
    for path in (ROOT / "demo" / "sample_chat.jsonl", ROOT / "demo" / "sample_chat.test.jsonl"):
        assert scan_path(path, Limits(screening=REPORT_ALL, min_training_rows=1)).sensitive["count"] == 0
    system = {"role": "system", "content": "Marv is a factual chatbot that is also sarcastic."}
    marv = b"".join(orjson.dumps({"messages": [system, {"role": "user", "content": q},
                                               {"role": "assistant", "content": a}]}) + b"\n"
                    for q, a in AZURE_SAMPLE)
    report, _ = scanned(marv + b"\n".join(ordinary(seed=7, rows=400)) + b"\n")
    assert report.sensitive["count"] == 0, report.sensitive["findings"][:3]


def test_the_generated_corpus_is_found_whole() -> None:
    rows = planted(seed=3, per_kind=4)
    report, _ = scanned(b"\n".join(row for row, *_ in rows) + b"\n", max_findings_listed=10_000)
    found = {(f["line"], f["message"], f["kind"]) for f in report.sensitive["findings"]}
    # Phone numbers are read international (+...) or NANP-formatted; other national forms are not planted
    # here for recall (bench/screening.py counts them).
    readable = [(line, message, kind, value) for line, (_, kind, message, value) in enumerate(rows, 1)
                if kind != "phone_number" or value.startswith("+") or US_NATIONAL.fullmatch(value)]
    assert [(kind, line) for line, message, kind, _ in readable if (line, message, kind) not in found] == []
    assert set(report.sensitive["by_kind"]) == set(MAKERS)


def test_redact_stages_typed_placeholders_and_splits_as_unscreened() -> None:
    data = filler(30) + chat(f"mail {VALUES['email']} or call {VALUES['phone_number']}", "noted") + b"\n" \
        + filler(30)
    report, staged = scanned(data, Screening("reject", "redact"))
    plain_report, plain = scanned(data, None)
    assert report.valid and report.sensitive["redacted"] == 2
    assert VALUES["email"].encode() not in staged and b"+44 7911" not in staged
    assert b'"mail <EMAIL> or call <PHONE_NUMBER>"' in staged
    assert staged.replace(b"mail <EMAIL> or call <PHONE_NUMBER>",
                          f"mail {VALUES['email']} or call {VALUES['phone_number']}".encode()) == plain
    assert (report.train_rows, report.test_rows) == (plain_report.train_rows, plain_report.test_rows)


def test_reject_is_an_error_on_the_line_with_the_value_masked() -> None:
    data = filler(5) + chat("my key", f"use {VALUES['aws_access_key']}") + b"\n" + filler(5)
    report, staged = scanned(data, Screening("reject", "redact"))
    assert not report.valid and staged == b""
    (error,) = report.errors
    assert (error.line, error.code) == (6, "sensitive_data")
    assert "AKIA…" in error.message and VALUES["aws_access_key"] not in error.message
    assert "aws access key" in error.message and "secrets are rejected" in error.message


def test_report_trains_the_values_as_they_are() -> None:
    data = filler(5) + chat("mail me", VALUES["email"]) + b"\n"
    report, staged = scanned(data, Screening("reject", "report"))
    assert report.valid and VALUES["email"].encode() in staged and report.sensitive["redacted"] == 0


def test_unscreened_scans_report_no_section() -> None:
    report, _ = scanned(filler(3) + chat("q", VALUES["email"]) + b"\n", None)
    assert report.sensitive == {} and "sensitive" not in report.to_text()


def test_parquet_rows_are_screened_by_row_number(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    messages = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
                for i in range(6)]
    messages[3][1]["content"] = f"card {VALUES['card_number']}"
    path = tmp_path / "chats.parquet"
    pq.write_table(pa.table({"messages": messages}), path)
    train, test = MemorySink(), MemorySink()
    report = scan_path(path, Limits(min_training_rows=1), train, test)
    assert [(f["line"], f["kind"]) for f in report.sensitive["findings"]] == [(4, "card_number")]
    assert b"<CARD_NUMBER>" in (train.value or b"") + (test.value or b"")


def test_the_re_fallback_flags_the_lines_hyperscan_flags() -> None:
    rows = [row for row, *_ in planted(seed=5, per_kind=2)] + ordinary(5, 50)
    data = b"\n".join(rows) + b"\n"
    ends = [i for i, c in enumerate(data) if c == 10]
    fallback = Prefilter(_re_scan())
    assert fallback.lines(data, 0, len(data), ends) == prefilter().lines(data, 0, len(data), ends) \
        == prefilter().lines(data, 0, len(data))
    assert len(prefilter().lines(data, 0, len(data))) >= 2 * len(MAKERS)


def test_the_policy_has_one_schema_for_settings_and_manifests() -> None:
    assert parse_screening({"secrets": "Report"}, "m") == {"secrets": "report"}
    with pytest.raises(ScreeningError, match=r"unknown key\(s\) pii; known: secrets, personal_data"):
        parse_screening({"pii": "redact"}, "m")
    with pytest.raises(ScreeningError, match=r"screening.secrets='keep': use one of reject, redact, report"):
        parse_screening({"secrets": "keep"}, "m")
    manifest = parse_manifest(b'{"screening": {"personal_data": "reject"}}', "a.jsonl.manifest.json")
    limits = manifest.limits(Limits())
    assert limits.screening == Screening("reject", "reject")
    with pytest.raises(ManifestError, match="screening"):
        parse_manifest(b'{"screening": "off"}', "a.jsonl.manifest.json")
    base = {"AUTOPILOT_STORAGE": DEVELOPMENT_STORAGE}
    settings = Settings.from_env({**base, "SCREEN_SECRETS": "redact", "SCREEN_PERSONAL_DATA": "report"})
    assert Limits.from_settings(settings).screening == Screening("redact", "report")
    assert Limits.from_settings(Settings.from_env(base)).screening == Screening("reject", "redact")
    with pytest.raises(SettingsError, match="SCREEN_SECRETS='maybe'"):
        Settings.from_env({**base, "SCREEN_SECRETS": "maybe"})


def test_findings_listed_are_capped_but_counted() -> None:
    data = b"".join(chat(f"mail {i}x@contoso.com", "ok") + b"\n" for i in range(30))
    report, _ = scanned(data, max_findings_listed=7)
    assert len(report.sensitive["findings"]) == 7 and report.sensitive["count"] == 30
    assert Report.from_dict(report.to_dict()).sensitive == report.sensitive
    assert dataclasses.replace(report).to_text().count("@***.com") == 7


def test_threads_scanning_at_once_flag_the_same_lines() -> None:
    # The Functions host runs invocations on a thread pool: each thread needs Hyperscan scratch of its own.
    rows = [row for row, *_ in planted(seed=9, per_kind=3)] + ordinary(9, 300)
    data = b"\n".join(rows) + b"\n"
    expected = prefilter().lines(data, 0, len(data))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: prefilter().lines(data, 0, len(data)), range(40)))
    assert all(result == expected for result in results) and expected
