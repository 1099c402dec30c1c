"""POST /v1/chat/completions as OpenAI's API has it: a `chat.completion`, or with `stream: true` server-sent
events of `chat.completion.chunk`s ending in `data: [DONE]`, which the `openai` client reads as a stream.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.chat_model import ChatModel, Completion
from engine.serve.score_api import MAX_NEW_TOKENS_CAP

DEFAULT_MAX_TOKENS = 16


class Message(BaseModel):
    role: str = Field(pattern="^(system|user|assistant|tool)$")
    content: str | None = None
    # Tool use, as OpenAI's chat format has it: rendered by the template exactly as at training.
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS_CAP)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS_CAP)
    n: int = Field(default=1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = None

    def conversation(self) -> list[dict[str, Any]]:
        return [m.model_dump(exclude_none=True) for m in self.messages]

    def generation(self) -> dict[str, Any]:
        """ChatModel keyword arguments: OpenAI samples at temperature > 0 and is greedy at 0."""
        return {"max_new_tokens": self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS,
                "temperature": self.temperature, "top_p": self.top_p, "do_sample": self.temperature > 0,
                "tools": self.tools}


def completion_body(done: Completion, model: str) -> dict[str, Any]:
    """A whole `chat.completion` for `done`."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text},
                     "finish_reason": done.finish_reason, "logprobs": None}],
        "usage": _usage(done),
    }


def stream_events(chat: ChatModel, request: ChatCompletionRequest, model: str) -> Iterator[str]:
    """The SSE lines of a streamed answer: the role, each piece of text, the finish reason, [DONE].

    Closing this iterator (the client went away) closes the model's stream, which stops generating.
    """
    chunk_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    pieces = chat.stream(request.conversation(), **request.generation())
    try:
        for piece in pieces:
            if isinstance(piece, Completion):
                yield event({}, piece.finish_reason)
                if request.stream_options and request.stream_options.include_usage:
                    usage = {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                             "model": model, "choices": [], "usage": _usage(piece)}
                    yield f"data: {json.dumps(usage)}\n\n"
            else:
                yield event({"content": piece})
    finally:
        pieces.close()
    yield "data: [DONE]\n\n"


def _usage(done: Completion) -> dict[str, int]:
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens}
