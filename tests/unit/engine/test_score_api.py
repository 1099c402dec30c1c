"""POST /score's request shapes: the ones Azure ML's chat samples send, each answered in its own form."""

from __future__ import annotations

import pytest

from engine.serve.score_api import BadRequest, answer, parse

CONVERSATION = [{"role": "user", "content": "Hi"}]


def test_the_seeds_batch_one_conversation_prompts_and_the_newer_form():
    batch = parse({"input_data": {"input_string": [CONVERSATION], "parameters": {"max_new_tokens": 5}}})
    assert batch.batch and batch.conversations == [CONVERSATION] and batch.parameters.max_new_tokens == 5
    one = parse({"input_data": {"input_string": CONVERSATION}})
    assert not one.batch and answer(one, ["hello"]) == {"output": "hello"}
    prompts = parse({"input_data": {"input_string": ["a", "b"]}})
    assert prompts.conversations == [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]
    assert answer(prompts, ["x", "y"]) == {"output": ["x", "y"]}
    newer = parse({"input_data": CONVERSATION, "params": {"temperature": 0.2, "do_sample": True}})
    assert not newer.batch and newer.parameters.temperature == 0.2 and newer.parameters.do_sample


@pytest.mark.parametrize(("body", "says"), [
    ({"inputs": CONVERSATION}, "expected one of"),
    ({"input_data": {"input_string": "hello"}}, "non-empty list"),
    ({"input_data": {"input_string": [CONVERSATION, []]}}, "non-empty list of messages"),
    ({"input_data": {"input_string": [{"role": "robot", "content": "x"}]}}, "message 0"),
    ({"input_data": {"input_string": CONVERSATION, "parameters": {"max_new_tokens": 0}}}, "max_new_tokens"),
])
def test_anything_else_is_refused_with_what_is_wrong(body, says):
    with pytest.raises(BadRequest, match=says):
        parse(body)
