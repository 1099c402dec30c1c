"""Each validation rule: a small file that breaks it gets its stable code on the right line."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shared.dataset import Limits, scan_path
from shared.dataset import rules as r

USER = {"role": "user", "content": "What is LoRA?"}
ASSISTANT = {"role": "assistant", "content": "A low-rank adapter."}
GOOD = {"messages": [USER, ASSISTANT]}


def write(tmp_path: Path, *lines: object, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(x if isinstance(x, bytes) else orjson.dumps(x) + b"\n" for x in lines))
    return path


@pytest.mark.parametrize(("bad", "code"), [
    (b"{not json}\n", r.INVALID_JSON),
    (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n', r.NOT_UTF8),
    ([GOOD], r.NOT_OBJECT),
    ("just a string", r.NOT_OBJECT),
    ({"prompt": "hi"}, r.MESSAGES_MISSING),
    ({"messages": "hi"}, r.MESSAGES_NOT_LIST),
    ({"messages": {"role": "user"}}, r.MESSAGES_NOT_LIST),
    ({"messages": []}, r.MESSAGES_EMPTY),
    ({"messages": ["hi", ASSISTANT]}, r.MESSAGE_NOT_OBJECT),
    ({"messages": [{"content": "hi"}, ASSISTANT]}, r.MESSAGE_MISSING_ROLE),
    ({"messages": [{"role": "user"}, ASSISTANT]}, r.MESSAGE_MISSING_CONTENT),
    ({"messages": [{**USER, "text": "x"}, ASSISTANT]}, r.MESSAGE_UNKNOWN_KEY),
    ({"messages": [{"role": "robot", "content": "x"}, ASSISTANT]}, r.MESSAGE_UNKNOWN_ROLE),
    ({"messages": [{"role": ["user"], "content": "x"}, ASSISTANT]}, r.MESSAGE_UNKNOWN_ROLE),
    ({"messages": [{"role": "user", "content": 42}, ASSISTANT]}, r.CONTENT_NOT_STRING),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}, ASSISTANT]},
     r.CONTENT_NOT_STRING),
    ({"messages": [{"role": "user", "content": None}, ASSISTANT]}, r.CONTENT_NOT_STRING),
    ({"messages": [{"role": "user", "content": ""}, ASSISTANT]}, r.CONTENT_BLANK),
    ({"messages": [USER, {"role": "assistant", "content": " \n\t"}]}, r.CONTENT_BLANK),
    ({"messages": [USER, {**ASSISTANT, "weight": 2}]}, r.BAD_WEIGHT),
    ({"messages": [{**USER, "tool_calls": []}, ASSISTANT]}, r.BAD_TOOL_CALLS),
    ({"messages": [USER]}, r.NO_ASSISTANT_MESSAGE),
    ({"messages": [{"role": "system", "content": "Be brief."}, USER]}, r.NO_ASSISTANT_MESSAGE),
])
def test_each_rule_rejects_with_its_code_and_line(tmp_path: Path, bad: object, code: str) -> None:
    report = scan_path(write(tmp_path, GOOD, GOOD, bad, GOOD))
    assert not report.valid
    assert report.error_count == 1
    assert report.errors[0].code == code
    assert report.errors[0].line == 3
    assert report.errors[0].message
    assert report.rows == 3  # the good rows are still counted


def test_valid_unusual_rows_pass(tmp_path: Path) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    rows = [
        {"prompt": "p", "prompt_id": "id", "messages": [USER, ASSISTANT]},
        {"messages": [{"role": "system", "content": "Be brief."}, USER, {**ASSISTANT, "weight": 0},
                      {"role": "user", "content": "and?", "name": "ann"}, {**ASSISTANT, "weight": 1}]},
        {"messages": [USER, {"role": "assistant", "content": None, "tool_calls": [call]},
                      {"role": "tool", "content": "42", "tool_call_id": "c1"}, ASSISTANT]},
        {"messages": [USER, {"role": "assistant", "tool_calls": [call]},
                      {"role": "tool", "content": "42", "tool_call_id": "c1"}, ASSISTANT]},
    ]
    report = scan_path(write(tmp_path, *rows))
    assert report.valid, report.errors
    assert report.rows == 4
    assert report.stats["roles"] == {"system": 1, "user": 5, "assistant": 7, "tool": 2}


def test_empty_file_and_blank_only_file_are_rejected(tmp_path: Path) -> None:
    for content in (b"", b"\n\r\n  \n"):
        report = scan_path(write(tmp_path, content))
        assert not report.valid
        assert [(e.line, e.code) for e in report.errors] == [(None, r.EMPTY_FILE)]


def test_warnings_do_not_reject(tmp_path: Path) -> None:
    long = {"messages": [USER, {"role": "assistant", "content": "word " * 400}]}
    no_user = {"messages": [{"role": "system", "content": "s"}, ASSISTANT]}
    late_system = {"messages": [USER, {"role": "system", "content": "s"}, ASSISTANT]}
    report = scan_path(write(tmp_path, GOOD, long, no_user, late_system),
                       Limits(token_limit_per_conversation=100))
    assert report.valid
    assert [(w.line, w.code) for w in report.warnings] == [
        (2, r.CONVERSATION_TOO_LONG), (3, r.NO_USER_MESSAGE), (4, r.SYSTEM_NOT_FIRST)]
    assert report.stats["conversations_over_token_limit"] == 1


def test_errors_listed_up_to_the_limit_but_all_counted(tmp_path: Path) -> None:
    report = scan_path(write(tmp_path, *([b"oops\n"] * 30), GOOD), Limits(max_errors_listed=5, split=False))
    assert report.error_count == 30
    assert [e.line for e in report.errors] == [1, 2, 3, 4, 5]


def test_token_budget_names_the_numbers(tmp_path: Path) -> None:
    rows = [{"messages": [USER, {"role": "assistant", "content": "x" * 400}]}] * 20
    report = scan_path(write(tmp_path, *rows), Limits(max_tokens_per_run=1000, epochs=3))
    assert not report.valid
    (error,) = report.errors
    assert error.code == r.TOKEN_BUDGET_EXCEEDED and error.line is None
    assert f"{report.estimated_tokens:,}" in error.message and "1,000" in error.message
    assert report.estimated_tokens == 3 * sum(
        r.estimate_tokens(len(USER["content"]) + 400, 2) for _ in range(report.train_rows))


def test_check_row_agrees_with_the_fast_path(tmp_path: Path) -> None:
    """The hot loop accepts exactly what the full rules accept, for a spread of near-miss rows."""
    variants = [GOOD, {"messages": [USER, {**ASSISTANT, "content": "\u00a0"}]},
                {"messages": [USER, {**ASSISTANT, "content": True}]},
                {"messages": [USER, {**ASSISTANT, "role": "Assistant"}]},
                {"messages": [{"role": "tool", "content": "x"}, ASSISTANT]},
                {"messages": [USER, ASSISTANT, {"role": "user"}]}]
    for row in variants:
        report = scan_path(write(tmp_path, row), Limits(split=False))  # one row: judged as a row only
        assert report.valid == (r.check_row(row) is None), row
