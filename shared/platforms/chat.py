"""OpenAI chat shapes for platforms whose deployments speak only the seed's scoring payload.

Azure ML's MLflow chat deployments take `{"input_data": {"input_string": [messages], "parameters": {}}}`
and answer `{"output": "..."}`; the front door speaks OpenAI's chat API. These turn one into the other, and a
whole completion into the server-sent events of a stream (such a deployment does not stream: its one answer is
sent as one chunk).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from shared.platforms.port import RequestRefused

DEFAULT_MAX_TOKENS = 256


def seed_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's scoring payload for an OpenAI chat request (messages, temperature, top_p, max tokens)."""
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestRefused("'messages' must be a non-empty list of {role, content}")
    temperature = float(request.get("temperature", 1.0) or 0.0)
    parameters: dict[str, Any] = {
        "max_new_tokens": int(request.get("max_completion_tokens") or request.get("max_tokens")
                              or DEFAULT_MAX_TOKENS),
        "do_sample": temperature > 0}
    if temperature > 0:
        parameters |= {"temperature": temperature, "top_p": float(request.get("top_p", 1.0))}
    return {"input_data": {"input_string": list(messages), "parameters": parameters}, "params": {}}


def seed_reply_text(answer: Any) -> str:
    """The text of a scoring answer: `{"output": "..."}`, a list of those, or a bare string."""
    if isinstance(answer, dict):
        answer = answer.get("output", answer)
    if isinstance(answer, list):
        answer = answer[0] if answer else ""
    return answer if isinstance(answer, str) else json.dumps(answer)


def completion(text: str, model: str, finish_reason: str = "stop") -> dict[str, Any]:
    """A whole `chat.completion` holding `text` (no usage: the seed's answer does not count tokens)."""
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": finish_reason, "logprobs": None}]}


def stream_of(whole: Mapping[str, Any]) -> Iterator[str]:
    """A whole `chat.completion` as the SSE lines of a stream: role, the text in one piece, finish, [DONE]."""
    choice = whole["choices"][0]
    base = {"id": whole.get("id", f"chatcmpl-{uuid.uuid4().hex}"), "object": "chat.completion.chunk",
            "created": whole.get("created", int(time.time())), "model": whole.get("model", "")}

    def event(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    yield event({"content": choice["message"]["content"]})
    yield event({}, choice.get("finish_reason") or "stop")
    yield "data: [DONE]\n\n"
