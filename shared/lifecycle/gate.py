"""The deploy gate: a new deployment must answer K test conversations, and score no worse than live.

The score is ROUGE-L F1 of each reply against the test split's held-out assistant turn, averaged, with
greedy decoding so two deployments are compared on the same footing. Azure ML's chat-completion pipeline
publishes no evaluation output today, so this gate is ours to compute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rouge_score import rouge_scorer

from shared.lifecycle.context import Context
from shared.staging import open_blob


class GateFailed(Exception):
    """The new deployment failed the smoke test or the eval gate; `kind` says which."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Case:
    prompt: list[dict[str, Any]]
    reference: str


@dataclass(frozen=True)
class Verdict:
    score: float
    baseline: float | None
    replies: list[str]


def seed_payload(messages: list[dict[str, Any]], max_new_tokens: int = 16, *,
                 greedy: bool = False) -> dict[str, Any]:
    """The seed's scoring payload, which Azure ML's MLflow chat deployments accept."""
    parameters: dict[str, Any] = {"max_new_tokens": max_new_tokens}
    parameters |= {"do_sample": False} if greedy else {"temperature": 0.7, "top_p": 0.9, "do_sample": True}
    return {"input_data": {"input_string": messages, "parameters": parameters}, "params": {}}


def test_cases(ctx: Context, test_uri: str, count: int) -> list[Case]:
    """The first `count` test conversations, each cut before its last assistant turn (the reference)."""
    cases = []
    for line in _lines(ctx, test_uri):
        messages = json.loads(line)["messages"]
        last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
        cases.append(Case(messages[:last] or messages[:1], str(messages[last].get("content") or "")))
        if len(cases) == count:
            break
    return cases


def check(ctx: Context, endpoint: str, new: str, live: str | None, cases: list[Case]) -> Verdict:
    """Smoke-test `new` on every case; then, if a live deployment exists and the gate is on, compare."""
    replies = [_ask(ctx, endpoint, new, case) for case in cases]
    for case, reply in zip(cases, replies, strict=True):
        if not reply.strip():
            raise GateFailed("smoke", f"deployment {new} gave an empty reply to "
                                      f"{case.prompt[-1].get('content', '')[:60]!r}")
    score = rouge_l(replies, [c.reference for c in cases])
    if live is None or not ctx.settings.eval_gate:
        return Verdict(score, None, replies)
    baseline = rouge_l([_ask(ctx, endpoint, live, case) for case in cases], [c.reference for c in cases])
    if score < baseline - ctx.settings.eval_gate_max_drop:
        raise GateFailed("eval", f"eval gate: ROUGE-L {score:.3f} of {new} is below live {live}'s "
                                 f"{baseline:.3f} by more than {ctx.settings.eval_gate_max_drop}")
    return Verdict(score, baseline, replies)


def rouge_l(replies: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F1 of replies against references (0 when there are none)."""
    if not replies:
        return 0.0
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    scores = [float(scorer.score(ref, reply)["rougeL"].fmeasure)
              for reply, ref in zip(replies, references, strict=True)]
    return sum(scores) / len(scores)


def reply_text(answer: Any) -> str:
    """The text of a scoring answer: `{"output": "..."}`, a list of those, or a bare string."""
    if isinstance(answer, dict):
        answer = answer.get("output", answer)
    if isinstance(answer, list):
        answer = answer[0] if answer else ""
    return answer if isinstance(answer, str) else ""


def _ask(ctx: Context, endpoint: str, deployment: str, case: Case) -> str:
    payload = seed_payload(case.prompt, ctx.settings.smoke_max_new_tokens, greedy=True)
    return reply_text(ctx.call(ctx.platform.score, endpoint, payload, deployment))


def _lines(ctx: Context, uri: str) -> Iterator[bytes]:
    """Lines of a staged blob, streamed: the test split can be large and we need only its head."""
    yield from open_blob(ctx.staging, ctx.staging.ref(uri)).lines()
