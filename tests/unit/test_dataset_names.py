"""Safe names from untrusted upload names."""

from __future__ import annotations

import re

import pytest

from shared.names import safe_blob_name

SAFE = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")
HOSTILE = ["../../etc/passwd", "/abs/x.jsonl", "..\\..\\win\\x.jsonl", "a/./b/../c.jsonl", "café 日本.jsonl",
           "a\x00b\nc\x1b.jsonl", "x" * 2000 + ".jsonl", "CON.jsonl", "...", "", "/", "dir/", "a//b",
           "a/" * 50 + "deep.jsonl", "\u202eevil.jsonl", "..", ". .jsonl"]


def test_plain_names_are_kept() -> None:
    assert safe_blob_name("chats.jsonl") == "chats.jsonl"
    assert safe_blob_name("team-a/2026/chats_v2.jsonl") == "team-a/2026/chats_v2.jsonl"


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_become_safe(name: str) -> None:
    safe = safe_blob_name(name)
    assert SAFE.match(safe), safe
    assert ".." not in safe.split("/") and not safe.startswith("/")
    assert all(len(part) <= 120 for part in safe.split("/"))
    assert len(safe.split("/")) <= 8
    assert safe != name


def test_distinct_names_stay_distinct() -> None:
    names = ["a b.jsonl", "a_b.jsonl", "a?b.jsonl", "x" * 300 + "1.jsonl", "x" * 300 + "2.jsonl"]
    assert len({safe_blob_name(n) for n in names}) == len(names)
    accented = safe_blob_name("café.jsonl")
    assert accented.startswith("cafe~") and accented.endswith(".jsonl")
