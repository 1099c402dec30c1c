"""What scanning a stretch of an upload yields (`Tally`), and the limits it is checked against (`Limits`)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from shared.dataset.report import Figures
from shared.dataset.rules import ROLES, Issue
from shared.dataset.screening import Finding, Screening

if TYPE_CHECKING:
    from shared.settings import Settings

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What an upload may be. `epochs` only feeds the token (cost) estimate.

    `split`: the file is split into train and test here (so it must leave at least one test row for the
    deploy gate); False for a file that is all train or all test (a manifest names a test file).
    `min_training_rows`: fewer training conversations than this is an error (Azure OpenAI's minimum is 10).
    `cost_per_million_tokens`: turns the token estimate into a cost estimate in the report.
    `weights`: what the platform does with `"weight": 0` turns. "honour": not learned (a conversation with
    none left to learn is no training row, and turns after its last learned one are not staged); "refuse": an
    error naming the line (the platform would train them); "train": accepted, and trained like any other.
    `tool_calling`: whether the platform can train tool-calling rows; if not they are refused by line.
    """

    max_line_bytes: int = 8 * MiB
    max_errors_listed: int = 20
    token_limit_per_conversation: int = 4096
    test_fraction: float = 0.05
    test_rows_max: int = 1000
    max_tokens_per_run: int | None = None
    epochs: int = 1
    min_training_rows: int = 1
    split: bool = True
    cost_per_million_tokens: float | None = None
    # Secrets and personal data: what to do with each (None: no screening); reports list this many findings.
    screening: Screening | None = Screening()  # noqa: RUF009 - frozen, so one shared default is fine
    max_findings_listed: int = 100
    weights: Literal["honour", "refuse", "train"] = "honour"
    tool_calling: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, epochs: int = 1) -> Limits:
        """The limits an upload is checked against under these settings: the ingest trigger and
        `autopilot validate` both take them from here, so the CLI says what an upload will get."""
        return cls(max_line_bytes=settings.max_line_bytes, max_errors_listed=settings.report_max_errors,
                   token_limit_per_conversation=settings.conversation_token_limit,
                   test_fraction=settings.test_fraction, test_rows_max=settings.test_rows_max,
                   max_tokens_per_run=settings.max_tokens_per_run, epochs=epochs,
                   min_training_rows=settings.min_training_rows,
                   cost_per_million_tokens=settings.cost_per_million_tokens,
                   screening=Screening(settings.screen_secrets, settings.screen_personal_data))


@dataclass
class Tally:
    """What a scanner found since its last harvest: findings (line numbers counted from the stretch's start),
    figures, and for each valid row its split key, billed tokens and (when staging) its staged line: the rows'
    lines one after another in `staged`, row k ending at `ends[k]`.

    `lines` is the stretch's line count so far; `done` marks the stretch's last tally.
    """

    errors: list[Issue] = field(default_factory=list)
    error_count: int = 0
    warnings: list[Issue] = field(default_factory=list)
    warning_count: int = 0
    figures: Figures = field(default_factory=Figures)
    roles: list[int] = field(default_factory=lambda: [0] * len(ROLES))
    over_limit: int = 0
    untrained: int = 0  # valid conversations with no learned assistant turn (Limits.weights "honour")
    keys: array[int] = field(default_factory=lambda: array("I"))
    tokens: array[int] = field(default_factory=lambda: array("q"))
    staged: bytearray = field(default_factory=bytearray)
    ends: array[int] = field(default_factory=lambda: array("Q"))
    lines: int = 0
    done: bool = False
    # Screening: the first findings, how many in all and of each kind, and the values redacted.
    findings: list[Finding] = field(default_factory=list)
    finding_count: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    redacted: int = 0
