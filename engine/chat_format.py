"""How a conversation becomes text and tokens: ONE renderer for training and for serving.

`render` is the only call to the chat template in the engine: the trainer renders each training row with it
(tools, tool calls and tool replies included) and the model server renders each request with it, so a model
is asked in exactly the format it learned. `training_example` turns a row into `input_ids` and `labels`, where
only the assistant turns that are learned carry labels: a turn with `"weight": 0` (OpenAI's chat format:
context, not to be learned) and every prompt token get -100, so they take no part in the loss.

Tool-calling data is never flattened in silence: when the base model's template drops a row's tools or tool
calls, `ChatFormatError` says so by name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

IGNORE_INDEX = -100  # the label PyTorch's cross-entropy (and so the trainer) skips
# What a message may carry into the template: `weight` is ours to read, never the template's.
_MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")


class ChatFormatError(ValueError):
    """The conversation cannot be rendered faithfully by this model's chat template; the message says why."""


def learned(message: Mapping[str, Any]) -> bool:
    """Whether a message is an assistant turn the model learns from (weight 1, the default)."""
    return message.get("role") == "assistant" and message.get("weight", 1) != 0


def _arguments(raw: Any) -> Any:
    """A tool call's arguments as templates expect them: OpenAI sends a JSON string, HF templates a dict."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def canonical_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The messages as the template receives them, at training and serving alike."""
    shown: list[dict[str, Any]] = []
    for message in messages:
        item = {key: message[key] for key in _MESSAGE_KEYS if message.get(key) is not None}
        item.setdefault("content", "")
        if "tool_calls" in item:
            item["tool_calls"] = [
                {**call, "function": {**call.get("function", {}),
                                      "arguments": _arguments(call.get("function", {}).get("arguments"))}}
                for call in item["tool_calls"]]
        shown.append(item)
    return shown


def render(tokenizer: Any, messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None = None, *,
           add_generation_prompt: bool = False) -> str:
    """The conversation as the model's chat template writes it (with `tools` when given)."""
    offered = list(tools) if tools else None
    return str(tokenizer.apply_chat_template(canonical_messages(messages), tools=offered,
                                             add_generation_prompt=add_generation_prompt, tokenize=False))


def check_faithful(text: str, messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None,
                   model: str) -> None:
    """Raise ChatFormatError when the rendered `text` lost a tool or a tool call the row carries."""
    for tool in tools or ():
        name = (tool.get("function") or {}).get("name") if isinstance(tool, Mapping) else None
        if name and name not in text:
            raise ChatFormatError(
                f"the chat template of {model} does not render \"tools\" (tool {name!r} is missing from the "
                "prompt): tool-calling data cannot be trained on it; use a base model whose template renders "
                "tools, or remove the tools")
    for message in messages:
        for call in message.get("tool_calls") or ():
            name = (call.get("function") or {}).get("name")
            if name and name not in text:
                raise ChatFormatError(
                    f"the chat template of {model} does not render assistant \"tool_calls\" (call to "
                    f"{name!r} is missing): tool-calling data cannot be trained on it; use a base model "
                    "whose template renders tool calls")


def _learned_spans(tokenizer: Any, messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None,
                   text: str) -> list[tuple[int, int]]:
    """Character spans of `text` holding the learned assistant turns (their answer and end-of-turn token).

    A turn's span runs from where the prompt before it ends (rendered with the assistant's turn opened) to
    where the conversation up to it ends; trailing whitespace is the template's, not the answer's.
    """
    spans = []
    for index, message in enumerate(messages):
        if not learned(message):
            continue
        upto = render(tokenizer, messages[: index + 1], tools)
        opened = render(tokenizer, messages[:index], tools, add_generation_prompt=True)
        if not text.startswith(upto):
            raise ChatFormatError("the chat template renders a conversation's start differently from the "
                                  "whole conversation, so its answers cannot be located for training")
        start = len(opened) if upto.startswith(opened) else len(render(tokenizer, messages[:index], tools))
        spans.append((start, len(upto.rstrip())))
    return spans


def training_example(tokenizer: Any, row: Mapping[str, Any], model: str = "the base model") -> dict[str, Any]:
    """`input_ids` and `labels` for one training row: labels only on learned assistant turns.

    Raises ChatFormatError if the template cannot render the row's tools or tool calls.
    """
    messages, tools = row["messages"], row.get("tools")
    text = render(tokenizer, messages, tools)
    if tools or any(m.get("tool_calls") for m in messages):
        check_faithful(text, messages, tools, model)
    spans = _learned_spans(tokenizer, messages, tools, text)
    # The template writes any BOS it wants; the tokenizer must not add another (as ChatModel.encode).
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    labels = [token if any(start <= begin < end for start, end in spans) else IGNORE_INDEX
              for token, (begin, _) in zip(ids, offsets, strict=True)]
    return {"input_ids": list(ids), "labels": labels}
