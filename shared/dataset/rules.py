"""The rules a chat-format training row must follow: stable codes and messages a user can act on.

The scan's hot loop checks the common shape (only `role` and `content`, both strings) inline; any row it
does not recognise comes here, where each rule is spelled out once. A row these rules accept is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

# Error codes (a row with any of these rejects the file).
INVALID_JSON = "invalid_json"
NOT_UTF8 = "not_utf8"
LINE_TOO_LONG = "line_too_long"
NOT_OBJECT = "not_object"
MESSAGES_MISSING = "messages_missing"
MESSAGES_NOT_LIST = "messages_not_list"
MESSAGES_EMPTY = "messages_empty"
MESSAGE_NOT_OBJECT = "message_not_object"
MESSAGE_MISSING_ROLE = "message_missing_role"
MESSAGE_MISSING_CONTENT = "message_missing_content"
MESSAGE_UNKNOWN_KEY = "message_unknown_key"
MESSAGE_UNKNOWN_ROLE = "message_unknown_role"
CONTENT_NOT_STRING = "content_not_string"
CONTENT_BLANK = "content_blank"
BAD_WEIGHT = "bad_weight"
BAD_TOOL_CALLS = "bad_tool_calls"
BAD_TOOLS = "bad_tools"
WEIGHT_NOT_HONOURED = "weight_not_honoured"
TOOLS_NOT_SUPPORTED = "tools_not_supported"
NO_ASSISTANT_MESSAGE = "no_assistant_message"
EMPTY_FILE = "empty_file"
TOKEN_BUDGET_EXCEEDED = "token_budget_exceeded"
UNREADABLE_FILE = "unreadable_file"
TOO_FEW_ROWS_TO_SPLIT = "too_few_rows_to_split"
TOO_FEW_TRAINING_ROWS = "too_few_training_rows"
GZIP_COMPRESSED = "gzip_compressed"
PARQUET_CONTENT = "parquet_content"

# Warning codes (reported, never reject the file).
CONVERSATION_TOO_LONG = "conversation_too_long"
NO_USER_MESSAGE = "no_user_message"
SYSTEM_NOT_FIRST = "system_not_first"
NOTHING_TO_LEARN = "nothing_to_learn"

ROLES = ("system", "user", "assistant", "tool")
ALLOWED_KEYS = frozenset({"role", "content", "name", "weight", "tool_calls", "tool_call_id"})
_EXAMPLE = '{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}'


@dataclass(frozen=True)
class Issue:
    """One finding: `line` is 1-based (the row number for Parquet), None for the file as a whole."""

    line: int | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape reports use: {"line", "code", "message"}."""
        return {"line": self.line, "code": self.code, "message": self.message}


def _kind(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def check_row(row: Any) -> tuple[str, str] | None:
    """The first rule a parsed row breaks, as (code, message); None when the row is valid."""
    if not isinstance(row, dict):
        return NOT_OBJECT, f"each line must be a JSON object like {_EXAMPLE}, got {_kind(row)}"
    if "messages" not in row:
        keys = ", ".join(sorted(map(str, row))[:5]) or "none"
        return MESSAGES_MISSING, f"the row has no \"messages\" key (keys found: {keys})"
    messages = row["messages"]
    if not isinstance(messages, list):
        return MESSAGES_NOT_LIST, f"\"messages\" must be an array of messages, got {_kind(messages)}"
    if not messages:
        return MESSAGES_EMPTY, ("\"messages\" is empty; a conversation needs at least a user and an "
                                "assistant turn")
    for index, message in enumerate(messages, 1):
        broken = check_message(message, index)
        if broken:
            return broken
    tools = row.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(
            isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")
            for t in tools)):
        return BAD_TOOLS, ("\"tools\" must be an array of {\"type\": \"function\", \"function\": {\"name\", "
                           "\"description\", \"parameters\"}}")
    if not any(m["role"] == "assistant" for m in messages):
        return NO_ASSISTANT_MESSAGE, ("the conversation has no assistant message; there is nothing to "
                                      "learn from")
    return None


def check_message(message: Any, index: int) -> tuple[str, str] | None:
    """The first rule message number `index` (1-based) breaks; None when it is valid."""
    where = f"message {index}"
    if not isinstance(message, dict):
        return MESSAGE_NOT_OBJECT, (f"{where} must be an object with \"role\" and \"content\", "
                                    f"got {_kind(message)}")
    unknown = [str(k) for k in message if k not in ALLOWED_KEYS]
    if unknown:
        return MESSAGE_UNKNOWN_KEY, (f"{where} has unknown key(s) {', '.join(sorted(unknown))}; "
                                     f"allowed: {', '.join(sorted(ALLOWED_KEYS))}")
    if "role" not in message:
        return MESSAGE_MISSING_ROLE, f"{where} has no \"role\"; use one of {', '.join(ROLES)}"
    role = message["role"]
    if not isinstance(role, str) or role not in ROLES:
        return MESSAGE_UNKNOWN_ROLE, f"{where} has role {role!r}; use one of {', '.join(ROLES)}"
    calls = message.get("tool_calls")
    if calls is not None and (role != "assistant" or not isinstance(calls, list)):
        return BAD_TOOL_CALLS, f"{where}: \"tool_calls\" must be an array, on an assistant message only"
    if "weight" in message and (message["weight"] not in (0, 1) or isinstance(message["weight"], bool)):
        return BAD_WEIGHT, f"{where}: \"weight\" must be 0 or 1, got {message['weight']!r}"
    # An assistant turn that only calls tools may carry no text (OpenAI's chat format allows null).
    if calls and message.get("content", None) in (None, ""):
        return None
    if "content" not in message:
        return MESSAGE_MISSING_CONTENT, f"{where} ({role}) has no \"content\""
    content = message["content"]
    if not isinstance(content, str):
        return CONTENT_NOT_STRING, f"{where} ({role}): \"content\" must be a string, got {_kind(content)}"
    if not content or content.isspace():
        return CONTENT_BLANK, f"{where} ({role}) has blank content; remove the message or give it text"
    return None


def learned_turns(messages: list[dict[str, Any]]) -> list[int]:
    """Indexes of the assistant turns a model learns from: `"weight": 0` marks a turn as context only."""
    return [i for i, m in enumerate(messages) if m["role"] == "assistant" and m.get("weight", 1) != 0]


def uses_tools(row: dict[str, Any]) -> bool:
    """Whether a valid row carries tool-calling data: tools offered, tool calls made or tool replies."""
    return bool(row.get("tools")) or any(m.get("tool_calls") or m["role"] == "tool" for m in row["messages"])


def measure(messages: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """(characters of content and tool calls, roles in order) of a conversation check_row accepted."""
    chars = sum(len(m["content"]) for m in messages if isinstance(m.get("content"), str))
    # A tool call is rendered as its JSON, and trained: it counts toward the token estimate too.
    chars += sum(len(orjson.dumps(m["tool_calls"])) for m in messages if m.get("tool_calls"))
    return chars, [m["role"] for m in messages]


def estimate_tokens(chars: int, n_messages: int) -> int:
    """Tokens of a conversation, estimated without a tokenizer.

    About four characters of English per token (OpenAI's rule of thumb) plus the chat template's few tokens
    per message (OpenAI's cookbook counts 3 per message + 3 per reply); we use 4 and 3. It undercounts
    languages that tokenize densely (CJK), which only matters for the budget check, not for validity.
    """
    return (chars + 3) // 4 + 4 * n_messages + 3
