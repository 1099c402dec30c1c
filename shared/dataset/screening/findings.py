"""What screening reports: one `Finding` per value (masked), and the report's `sensitive` section."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.dataset.screening.kinds import KINDS
from shared.dataset.screening.policy import Screening

SENSITIVE_DATA = "sensitive_data"  # the error code of a finding whose category is rejected


@dataclass(frozen=True)
class Finding:
    """A sensitive value at `line` (the row number for Parquet), in message number `message` (1-based).
    `masked` is all that is ever shown of it."""

    line: int
    message: int
    kind: str
    category: str
    masked: str
    severity: str = "high"

    def moved(self, lines: int) -> Finding:
        """The finding with its line counted `lines` further on (a range's, from the start of the file)."""
        return Finding(self.line + lines, self.message, self.kind, self.category, self.masked, self.severity)

    def to_dict(self) -> dict[str, Any]:
        """{"line", "message", "kind", "category", "severity", "masked"}."""
        return {"line": self.line, "message": self.message, "kind": self.kind, "category": self.category,
                "severity": self.severity, "masked": self.masked}


_ORDER = {kind.name: i for i, kind in enumerate(KINDS)}


def section(policy: Screening, findings: Sequence[Finding], count: int, by_kind: Mapping[str, int],
            redacted: int) -> dict[str, Any]:
    """The report's `sensitive` object: the policy, the first findings, the counts by kind (in a fixed
    order, so one pass and a parallel scan write the same JSON) and the values redacted."""
    return {"policy": policy.to_dict(), "count": count,
            "by_kind": {k: by_kind[k] for k in sorted(by_kind, key=lambda k: _ORDER.get(k, len(_ORDER)))},
            "findings": [f.to_dict() for f in findings], "redacted": redacted}


def describe(kind: str) -> str:
    """A kind's name as words: `aws_access_key` -> `aws access key`."""
    return kind.replace("_", " ")
