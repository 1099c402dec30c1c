"""What POST /score accepts: the request shapes Azure ML's own chat samples send to an online endpoint.

    {"input_data": {"input_string": [MESSAGES], "parameters": {...}}, "params": {}}   the seed (a batch)
    {"input_data": {"input_string": MESSAGES, "parameters": {...}}}                    one conversation
    {"input_data": {"input_string": ["a prompt", ...], "parameters": {...}}}           text-generation
    {"input_data": MESSAGES or [MESSAGES], "params": {...}}                            MLflow's newer form
    {"messages": MESSAGES, "max_tokens": 64, "temperature": 0.2, ...}                  Azure OpenAI style

Answers keep each shape's own form: `{"output": TEXT}` for one conversation, `{"output": [TEXT, ...]}` for a
batch, and a `chat.completion` for the OpenAI-style body. A body in none of these shapes is a 422 naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_NEW_TOKENS_CAP = 512
ROLES = ("system", "user", "assistant")
SHAPES = ('{"input_data": {"input_string": [...], "parameters": {...}}}', '{"input_data": [...], '
          '"params": {...}}', '{"messages": [...]} (OpenAI style)')


class BadRequest(ValueError):
    """The body is not one of the accepted shapes; the message says what was wrong and what is accepted."""


class GenerationParameters(BaseModel):
    # Azure's MLflow scoring server passes further generate() kwargs through; unknown ones are ignored here.
    model_config = ConfigDict(extra="ignore")
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    do_sample: bool = False
    max_new_tokens: int = Field(default=16, ge=1, le=MAX_NEW_TOKENS_CAP)


@dataclass(frozen=True)
class ScoreRequest:
    """The conversations to answer, how, and whether the caller sent a batch (answers as a list)."""

    conversations: list[list[dict[str, str]]]
    parameters: GenerationParameters
    batch: bool


def parse(body: Any) -> ScoreRequest:
    """The ScoreRequest in `body` (a parsed JSON document), or BadRequest."""
    if not isinstance(body, Mapping) or "input_data" not in body:
        raise BadRequest(f"expected one of {'; '.join(SHAPES)}")
    data = body["input_data"]
    if isinstance(data, Mapping):
        raw, parameters = data.get("input_string"), data.get("parameters") or {}
    else:
        raw, parameters = data, body.get("params") or {}
    try:
        params = GenerationParameters.model_validate(parameters)
    except ValidationError as exc:
        raise BadRequest(f"invalid parameters: {_first_error(exc)}") from None
    if not isinstance(raw, list) or not raw:
        raise BadRequest("input_string (or input_data) must be a non-empty list of messages, of "
                         "conversations, or of prompt strings")
    if all(isinstance(item, Mapping) for item in raw):
        return ScoreRequest([conversation(raw)], params, batch=False)
    return ScoreRequest([_one(item) for item in raw], params, batch=True)


def conversation(messages: Any) -> list[dict[str, str]]:
    """A list of {role, content} messages, checked; BadRequest names the first bad one."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("a conversation must be a non-empty list of messages")
    checked = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, Mapping) else None
        content = message.get("content") if isinstance(message, Mapping) else None
        if role not in ROLES or not isinstance(content, str):
            raise BadRequest(f"message {index} must be {{\"role\": one of {', '.join(ROLES)}, "
                             "\"content\": a string}")
        checked.append({"role": str(role), "content": content})
    return checked


def answer(request: ScoreRequest, texts: list[str]) -> dict[str, Any]:
    """The /score answer for `texts`, in the caller's form (a list for a batch)."""
    return {"output": texts if request.batch else texts[0]}


def _one(item: Any) -> list[dict[str, str]]:
    if isinstance(item, str):  # a text-generation prompt: one user turn
        return [{"role": "user", "content": item}]
    return conversation(item)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
