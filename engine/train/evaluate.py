"""The local engine's side of the evaluation report: the three models' answers and held-out losses.

The job asks the base model before training, the candidate after, and the model the endpoint serves now (if
any) in between; shared.evaluation turns what they said into the report. Answers come from ChatModel, the
class the endpoint serves with, so the report shows what a caller would get (greedy, same template).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.chat_model import ChatModel
from shared.evaluation import EvalReport, build_report, held_out
from shared.evaluation.report import ANSWERED_MAX
from shared.settings import Settings

log = logging.getLogger(__name__)

# Room for a whole support-style answer (the demo's references are 22-34 tokens) while a rambling base model
# is cut off early: every token is one more forward pass per model compared.
MAX_NEW_TOKENS = 48


@dataclass
class Evidence:
    """What the models said on the answered test conversations, and their losses on the whole split."""

    prompts: list[list[dict[str, str]]]
    references: list[str]
    names: dict[str, str] = field(default_factory=dict)
    answers: dict[str, list[str]] = field(default_factory=dict)
    losses: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    remarks: list[str] = field(default_factory=list)

    @classmethod
    def for_rows(cls, test_rows: Sequence[Mapping[str, Any]]) -> Evidence:
        prompts, references = held_out(test_rows[:ANSWERED_MAX])
        return cls(prompts, references)

    def report(self, test_rows: int) -> EvalReport:
        """The evaluation report of what was recorded (`test_rows`: the size of the whole test split)."""
        return build_report([p[-1]["content"] for p in self.prompts], self.references, self.answers,
                            self.losses, self.names, test_rows=test_rows, max_new_tokens=MAX_NEW_TOKENS,
                            notes=self.notes, remarks=self.remarks)

    def ask(self, role: str, name: str, chat: ChatModel) -> None:
        """Record `chat`'s greedy answers to every answered prompt as `role`'s."""
        self.names[role] = name
        if self.prompts:
            done = chat.complete_many(self.prompts, max_new_tokens=MAX_NEW_TOKENS)
            self.answers[role] = [d.text for d in done]


@dataclass(frozen=True)
class LiveModel:
    """The model version the endpoint serves now, where its files are, and what it was tuned from."""

    name: str
    model_dir: Path
    base_model: str


def live_model(settings: Settings, endpoint: str) -> LiveModel | None:
    """The model `endpoint` serves now (its leading deployment's), or None if it serves none."""
    from shared.platforms.local import mlflow_store
    from shared.platforms.local.endpoints import LocalEndpoints
    from shared.platforms.port import PlatformError

    endpoints = LocalEndpoints(settings)
    try:
        serving = endpoints.serving_model(endpoint)
        if serving is None:
            return None
        version = mlflow_store.use(settings.data_dir).get_model_version(serving.name, serving.version)
        model_dir = endpoints.model_dir(serving)
    except PlatformError as exc:
        log.warning("the live model of endpoint %s cannot be evaluated: %s", endpoint, exc)
        return None
    return LiveModel(f"{serving.name}:{serving.version}", model_dir,
                     str((version.tags or {}).get("autopilot-base-model", "")))


def ask_live(evidence: Evidence, live: LiveModel, base_label: str, loss: Any) -> None:
    """Add the live model's answers, and its loss when it shares this run's base model (and tokenizer).

    `loss(model, tokenizer)` computes a held-out loss the way the candidate's was computed.
    """
    chat = ChatModel.load(live.model_dir, live.name)
    evidence.ask("live", live.name, chat)
    if live.base_model == base_label:
        evidence.losses["live"] = loss(chat.model, chat.tokenizer)
    else:
        evidence.notes["live"] = (f"tuned from {live.base_model or 'another base model'}: its loss counts "
                                  "other tokens, so only ROUGE-L compares")
