"""What the local engine trains on: learned assistant turns only, and tools rendered as serving renders them.

One renderer (engine.chat_format) serves the trainer and the model server; these tests hold
the collated batch the trainer sees and the prompt the server builds to it, on the tiny model's tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.chat_format import IGNORE_INDEX, ChatFormatError, render, training_example
from engine.models.tiny import ensure_tiny_base_model
from engine.train.training import examples

TOOLS = [{"type": "function", "function": {"name": "get_order_status", "description": "Look up an order",
                                           "parameters": {"type": "object",
                                                          "properties": {"order_id": {"type": "string"}}}}}]
CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_order_status", "arguments": "{\"order_id\": \"A-17\"}"}}
TOOL_ROW: dict[str, Any] = {"tools": TOOLS, "messages": [
    {"role": "user", "content": "Where is my order A-17?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "shipped"},
    {"role": "assistant", "content": "Your order has shipped."}]}
# The template the tiny model had before it rendered tools: what many base models' templates still are.
NO_TOOLS_TEMPLATE = ("{{ bos_token }}{% for message in messages %}"
                     "{{ '<|' + message['role'] + '|>\\n' + (message['content'] or '') + '<|end|>\\n' }}"
                     "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ensure_tiny_base_model(Path(tmp_path_factory.mktemp("models"))))


def learned_text(tokenizer: Any, ids: list[int], labels: list[int]) -> str:
    return str(tokenizer.decode([i for i, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]))


def test_a_weight_0_turn_has_label_minus_100_in_the_collated_batch(tokenizer: Any) -> None:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows = [
        {"messages": [{"role": "user", "content": "Hello there"},
                      {"role": "assistant", "content": "An outdated answer", "weight": 0},
                      {"role": "user", "content": "And now?"},
                      {"role": "assistant", "content": "The current answer"}]},
        {"messages": [{"role": "user", "content": "Thanks"},
                      {"role": "assistant", "content": "You are welcome"}]},
    ]
    dataset = examples(rows, tokenizer, "tiny")
    batch = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)([dataset[0], dataset[1]])
    first_ids, first_labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    outdated = tokenizer("An outdated answer", add_special_tokens=False)["input_ids"]
    start = next(i for i in range(len(first_ids)) if first_ids[i:i + len(outdated)] == outdated)
    assert all(label == IGNORE_INDEX for label in first_labels[start:start + len(outdated)])
    assert learned_text(tokenizer, first_ids, first_labels) == "The current answer<|end|>"
    second = learned_text(tokenizer, batch["input_ids"][1].tolist(), batch["labels"][1].tolist())
    assert second == "You are welcome<|end|>", "prompts and padding are not learned either"


def test_tools_survive_the_template_round_trip(tokenizer: Any) -> None:
    from engine.chat_model import ChatModel

    example = training_example(tokenizer, TOOL_ROW, "tiny")
    trained = tokenizer.decode(example["input_ids"])
    assert "get_order_status" in trained and "Look up an order" in trained and "order_id" in trained
    assert learned_text(tokenizer, example["input_ids"], example["labels"]) == (
        '<tool_call>{"name": "get_order_status", "arguments": {"order_id": "A-17"}}</tool_call><|end|>'
        "Your order has shipped.<|end|>")
    # Serving the same conversation up to the call renders the prompt the model learned the call after.
    served = ChatModel.__new__(ChatModel)
    served._tokenizer, served.model_uri = tokenizer, "tiny"
    prompt = served.render(TOOL_ROW["messages"][:1], TOOLS)
    assert prompt == render(tokenizer, TOOL_ROW["messages"][:1], TOOLS, add_generation_prompt=True)
    assert trained.startswith(prompt) and "get_order_status" in prompt


def test_a_template_that_drops_tools_is_refused_by_name(tokenizer: Any) -> None:
    plain = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = NO_TOOLS_TEMPLATE
    with pytest.raises(ChatFormatError, match=r"does not render \"tools\" \(tool 'get_order_status'"):
        training_example(plain, TOOL_ROW, "SmolLM2")
    without_tools = {"messages": TOOL_ROW["messages"]}
    with pytest.raises(ChatFormatError, match="does not render assistant \"tool_calls\""):
        training_example(plain, without_tools, "SmolLM2")


def test_the_model_server_renders_tools_as_training_did(tokenizer: Any, tmp_path: Path) -> None:
    """POST /v1/chat/completions with `tools`: the prompt is chat_format.render's, as at training; a model
    whose template drops tools answers 400 naming them rather than a reply that never saw them."""
    from fastapi.testclient import TestClient
    from transformers import AutoModelForCausalLM

    from engine.chat_model import ChatModel
    from engine.serve.model_server import build_app
    from shared.platforms.local.endpoint_files import EndpointFiles

    model = AutoModelForCausalLM.from_pretrained(tokenizer.name_or_path)
    files = EndpointFiles(tmp_path / "ep")
    files.root.mkdir()
    auth = {"Authorization": "Bearer k"}
    body = {"messages": TOOL_ROW["messages"][:1], "tools": TOOLS, "max_tokens": 2, "temperature": 0}
    served = TestClient(build_app(ChatModel(model, tokenizer, "tiny"), "k", files, "blue"))
    answer = served.post("/v1/chat/completions", json=body, headers=auth)
    assert answer.status_code == 200, answer.text
    prompt = render(tokenizer, TOOL_ROW["messages"][:1], TOOLS, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert answer.json()["usage"]["prompt_tokens"] == len(ids)
    assert "get_order_status" in prompt

    plain = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = NO_TOOLS_TEMPLATE
    refused = TestClient(build_app(ChatModel(model, plain, "SmolLM2"), "k", files, "blue")).post(
        "/v1/chat/completions", json=body, headers=auth)
    assert refused.status_code == 400 and "does not render \"tools\"" in refused.json()["detail"]
