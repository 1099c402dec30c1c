"""The evaluation report of a run: base model, candidate and live deployment, side by side on the test split.

Adapter-neutral: `build_report` is a function of the models' answers, the references and the held-out
losses, whoever produced them (the local engine computes all three in its job; an Azure ML job could log the
same inputs). Losses are the mean token loss on the test split's assistant turns; ROUGE-L is the mean F1 of
greedy answers against the held-out assistant turn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# The roles a report compares, in the order it shows them; metric names carry the role's prefix.
BASE, CANDIDATE, LIVE = "base", "candidate", "live"
ROLES = (BASE, CANDIDATE, LIVE)
PREFIX = {BASE: "base_", CANDIDATE: "", LIVE: "live_"}
# How many test conversations get answers (ROUGE-L and samples): generation is the slow part on a CPU, and
# it runs for every model compared. Held-out loss covers the whole split; 4 answers are enough for a ROUGE-L
# that separates a tuned model from its base (demo: 0.14 vs 0.6) and for the 3 samples shown.
ANSWERED_MAX = 4
SAMPLES_SHOWN = 3


@dataclass(frozen=True)
class ModelScore:
    """One model's figures on the test split (None where it could not be measured, with `note` saying why)."""

    role: str
    name: str
    loss: float | None = None
    rouge_l: float | None = None
    note: str = ""

    @property
    def perplexity(self) -> float | None:
        return None if self.loss is None else perplexity(self.loss)


@dataclass(frozen=True)
class Sample:
    """One held-out conversation: the last user turn, the reference answer and each model's answer."""

    prompt: str
    reference: str
    answers: Mapping[str, str]


@dataclass(frozen=True)
class EvalReport:
    scores: tuple[ModelScore, ...]
    samples: tuple[Sample, ...]
    test_rows: int
    answered: int
    max_new_tokens: int
    notes: tuple[str, ...] = field(default=())

    def score(self, role: str) -> ModelScore | None:
        """The figures of `role` (base, candidate or live), if the report has them."""
        return next((s for s in self.scores if s.role == role), None)

    def metrics(self) -> dict[str, float]:
        """Flat metrics as a job records them: eval_loss, perplexity, rouge_l, each with its role's prefix."""
        flat: dict[str, float] = {}
        for score in self.scores:
            prefix = PREFIX[score.role]
            for name, value in (("eval_loss", score.loss), ("perplexity", score.perplexity),
                                ("rouge_l", score.rouge_l)):
                if value is not None:
                    flat[prefix + name] = round(value, 6)
        return flat

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what eval_report.json holds)."""
        data = asdict(self)
        for entry, score in zip(data["scores"], self.scores, strict=True):
            entry["perplexity"] = score.perplexity
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalReport:
        """Read back what `to_dict` wrote."""
        return cls(
            scores=tuple(ModelScore(role=str(s["role"]), name=str(s.get("name") or ""),
                                    loss=_number(s.get("loss")), rouge_l=_number(s.get("rouge_l")),
                                    note=str(s.get("note") or ""))
                         for s in data.get("scores", [])),
            samples=tuple(Sample(str(s["prompt"]), str(s["reference"]), dict(s["answers"]))
                          for s in data.get("samples", [])),
            test_rows=int(data.get("test_rows", 0)), answered=int(data.get("answered", 0)),
            max_new_tokens=int(data.get("max_new_tokens", 0)), notes=tuple(data.get("notes", ())))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def build_report(prompts: Sequence[str], references: Sequence[str], answers: Mapping[str, Sequence[str]],
                 losses: Mapping[str, float | None], names: Mapping[str, str], *, test_rows: int,
                 max_new_tokens: int, notes: Mapping[str, str] | None = None,
                 remarks: Sequence[str] = ()) -> EvalReport:
    """The report for the models in `names` (role → name): ROUGE-L from `answers`, losses as given.

    `prompts`/`references` are the answered test conversations' last user turns and held-out answers;
    `answers[role]` are that model's replies to them, in order. `notes[role]` says why a figure is missing.
    `remarks` are lines about the run as a whole (where training started from, the loss of each epoch).
    """
    notes = notes or {}
    scores = tuple(
        ModelScore(role=role, name=names[role], loss=losses.get(role),
                   rouge_l=rouge_l(list(answers[role]), list(references)) if role in answers else None,
                   note=notes.get(role, ""))
        for role in ROLES if role in names)
    shown = min(SAMPLES_SHOWN, len(references))
    samples = tuple(Sample(prompts[i], references[i], {r: answers[r][i] for r in ROLES if r in answers})
                    for i in range(shown))
    return EvalReport(scores, samples, test_rows=test_rows, answered=len(references),
                      max_new_tokens=max_new_tokens, notes=tuple(remarks))


def rouge_l(replies: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F1 of replies against references (0 when there are none)."""
    if not replies:
        return 0.0
    from rouge_score import rouge_scorer  # here: it pulls in nltk, which most importers never need

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    scores = [float(scorer.score(ref, reply)["rougeL"].fmeasure)
              for reply, ref in zip(replies, references, strict=True)]
    return sum(scores) / len(scores)


def perplexity(loss: float) -> float:
    """exp(loss), capped where it would overflow (an untrained model's loss can be large)."""
    return math.exp(min(loss, 700.0))


def held_out(rows: Sequence[Mapping[str, Any]]) -> tuple[list[list[dict[str, str]]], list[str]]:
    """Each test conversation cut before its last assistant turn (the prompt), and that turn (reference)."""
    prompts, references = [], []
    for row in rows:
        messages = [{"role": str(m.get("role")), "content": str(m.get("content") or "")}
                    for m in row["messages"]]
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None:
            continue
        prompts.append(messages[:last] or messages[:1])
        references.append(messages[last]["content"])
    return prompts, references
