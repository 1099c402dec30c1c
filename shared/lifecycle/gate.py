"""The deploy gate: a candidate must beat its base model, answer K test conversations, and score no worse
than live.

Against the base model: the job's evaluation report (held-out loss and ROUGE-L of base and candidate on the
test split) — where the platform's job produced one; Azure ML's chat-completion pipeline publishes no
evaluation output today, so there the rule has nothing to read and lets the candidate through.
Against live: ROUGE-L F1 of each deployment's reply against the test split's held-out assistant turn,
averaged, with greedy decoding so two deployments are compared on the same footing.

A redeploy of a model that already passed (a wake, an operator's redeploy) is not gated again: its model is
the same, and a wake has no live deployment to compare with. It gets one readiness request (`ready`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Paid at start-up, not by the first promote step of each worker (nltk makes it ~1.4 s).
import rouge_score.rouge_scorer  # noqa: F401

from shared.evaluation import held_out, rouge_l
from shared.lifecycle.context import Context
from shared.runs import Run
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
    rows = []
    for line in _lines(ctx, test_uri):
        rows.append(json.loads(line))
        if len(rows) == count:
            break
    prompts, references = held_out(rows)
    return [Case(list(prompt), reference) for prompt, reference in zip(prompts, references, strict=True)]


def check(ctx: Context, endpoint: str, new: str, live: str | None, cases: list[Case],
          max_drop: float | None = None) -> Verdict:
    """Smoke-test `new` on every case; then, if a live deployment exists and the gate is on, compare
    (`max_drop`: the project's allowed ROUGE-L drop, else EVAL_GATE_MAX_DROP).

    No case is no test: the gate fails closed rather than let an untested model take the traffic."""
    if not cases:
        raise GateFailed("smoke", f"deployment {new} has no test conversation to answer (the run's test "
                                  "split is empty); an untested model is never deployed")
    replies = [_ask(ctx, endpoint, new, case) for case in cases]
    for case, reply in zip(cases, replies, strict=True):
        if not reply.strip():
            raise GateFailed("smoke", f"deployment {new} gave an empty reply to "
                                      f"{case.prompt[-1].get('content', '')[:60]!r}")
    score = rouge_l(replies, [c.reference for c in cases])
    if live is None or not ctx.settings.eval_gate:
        return Verdict(score, None, replies)
    baseline = rouge_l([_ask(ctx, endpoint, live, case) for case in cases], [c.reference for c in cases])
    drop = ctx.settings.eval_gate_max_drop if max_drop is None else max_drop
    if score < baseline - drop:
        raise GateFailed("eval", f"eval gate: ROUGE-L {score:.3f} of {new} is below live {live}'s "
                                 f"{baseline:.3f} by more than {drop}")
    return Verdict(score, baseline, replies)


def already_passed(run: Run) -> bool:
    """Whether the run's model passed its gates once: promote records the gate's score only when the model
    takes the traffic, and a run's model never changes after it is registered."""
    return run.eval_rouge_l is not None


def ready(ctx: Context, endpoint: str, deployment: str, run: Run, cases: list[Case]) -> Verdict:
    """The check for a redeployed model that already passed its gate: one request, which must be answered
    (a deployment can report Succeeded and still not answer). The verdict keeps the run's gate figures."""
    if not cases:
        raise GateFailed("smoke", f"deployment {deployment} has no test conversation to answer (the run's "
                                  "test split is empty); an untested model is never deployed")
    reply = _ask(ctx, endpoint, deployment, cases[0])
    if not reply.strip():
        raise GateFailed("smoke", f"deployment {deployment} gave an empty reply to its readiness request")
    return Verdict(run.eval_rouge_l or 0.0, run.baseline_rouge_l, [reply])


def check_against_base(ctx: Context, metrics: Mapping[str, float], max_drop: float | None = None) -> str:
    """Refuse a candidate whose test-split figures are worse than its base model's; returns what was checked.

    Loss may not rise at all (it is measured on the whole split); ROUGE-L may drop at most
    EVAL_GATE_MAX_DROP (it is measured on a few greedy answers). Without the figures nothing is refused.
    """
    if not ctx.settings.eval_gate_base:
        return "base-model gate off (EVAL_GATE_BASE=false)"
    checks = []
    loss, base_loss = metrics.get("eval_loss"), metrics.get("base_eval_loss")
    if loss is not None and base_loss is not None:
        if loss > base_loss:
            raise GateFailed("base", f"base-model gate: held-out loss {loss:.3f} is {loss - base_loss:.3f} "
                                     f"above the base model's {base_loss:.3f}")
        checks.append(f"loss {loss:.3f} vs base {base_loss:.3f}")
    rouge, base_rouge = metrics.get("rouge_l"), metrics.get("base_rouge_l")
    if rouge is not None and base_rouge is not None:
        drop = ctx.settings.eval_gate_max_drop if max_drop is None else max_drop
        if rouge < base_rouge - drop:
            raise GateFailed("base", f"base-model gate: ROUGE-L {rouge:.3f} is {base_rouge - rouge:.3f} "
                                     f"below the base model's {base_rouge:.3f} (at most {drop} is allowed)")
        checks.append(f"ROUGE-L {rouge:.3f} vs base {base_rouge:.3f}")
    return "; ".join(checks) or "no base-model figures from the job"


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
