"""The result of scanning an upload: validity, findings, statistics, content hash, token estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.dataset.rules import Issue


@dataclass
class Report:
    """What `scan` found. `errors`/`warnings` hold the first few; the counts cover the whole file."""

    valid: bool
    rows: int
    train_rows: int
    test_rows: int
    errors: list[Issue]
    error_count: int
    warnings: list[Issue]
    warning_count: int
    stats: dict[str, Any]
    content_sha256: str
    estimated_tokens: int
    bytes: int = 0
    format: str = "jsonl"
    extra: dict[str, Any] = field(default_factory=dict)
    # Secrets and personal data found (masked), the policy applied and counts by kind; {} unscreened.
    sensitive: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The CLI's `--json` object (the keys below, in this order)."""
        return {
            "valid": self.valid,
            "rows": self.rows,
            "errors": [e.to_dict() for e in self.errors],
            "error_count": self.error_count,
            "warnings": [w.to_dict() for w in self.warnings],
            "warning_count": self.warning_count,
            "stats": self.stats,
            "content_sha256": self.content_sha256,
            "estimated_tokens": self.estimated_tokens,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "bytes": self.bytes,
            "format": self.format,
            "sensitive": self.sensitive,
        }

    def to_json(self) -> str:
        """`to_dict()` as one line of JSON text."""
        return orjson.dumps(self.to_dict()).decode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Rebuild a report from `to_dict()` output (e.g. one stored next to a quarantined upload)."""
        def issues(key: str) -> list[Issue]:
            return [Issue(i.get("line"), i["code"], i["message"]) for i in data.get(key, [])]

        return cls(valid=data["valid"], rows=data["rows"], train_rows=data.get("train_rows", 0),
                   test_rows=data.get("test_rows", 0), errors=issues("errors"),
                   error_count=data["error_count"],
                   warnings=issues("warnings"), warning_count=data.get("warning_count", 0),
                   stats=data.get("stats", {}), content_sha256=data["content_sha256"],
                   estimated_tokens=data.get("estimated_tokens", 0), bytes=data.get("bytes", 0),
                   format=data.get("format", "jsonl"), sensitive=data.get("sensitive", {}))

    def to_text(self, name: str = "upload") -> str:
        """A short report a person reads: verdict, findings with line numbers, the numbers that matter."""
        verdict = "VALID" if self.valid else "REJECTED"
        lines = [f"{name}: {verdict} - {self.rows:,} rows ({self.train_rows:,} train / "
                 f"{self.test_rows:,} test), {self.bytes:,} bytes, sha256 {self.content_sha256[:16]}…"]
        if self.error_count:
            lines.append(f"{self.error_count:,} error(s)" + (f", first {len(self.errors)}:"
                                                             if self.error_count > len(self.errors) else ":"))
            lines += [f"  {_where(e)}: [{e.code}] {e.message}" for e in self.errors]
        if self.warning_count:
            lines.append(f"{self.warning_count:,} warning(s)" + (f", first {len(self.warnings)}:"
                                                                 if self.warning_count > len(self.warnings)
                                                                 else ":"))
            lines += [f"  {_where(w)}: [{w.code}] {w.message}" for w in self.warnings]
        lines += _sensitive_lines(self.sensitive)
        s = self.stats
        if self.rows:
            m, t = s["messages"], s["tokens"]
            lines.append(f"messages per conversation: min {m['min']}, mean {m['mean']:.1f}, max {m['max']}")
            lines.append(f"tokens per conversation (estimated): min {t['min']}, mean {t['mean']:.0f}, "
                         f"max {t['max']}")
            roles = ", ".join(f"{role} {n:,}" for role, n in s.get("roles", {}).items() if n)
            lines.append(f"messages by role: {roles}")
        budget = s.get("token_budget")
        lines.append(f"estimated training tokens: {self.estimated_tokens:,} "
                     f"({s.get('epochs', 1)} epoch(s), {s.get('token_estimate', 'chars/4')})"
                     + (f", {self.estimated_tokens / budget:.0%} of the budget of {budget:,} "
                        "(MAX_TOKENS_PER_RUN)" if budget else ", no token budget"))
        if cost := s.get("cost_estimate"):
            lines.append(f"cost estimate: about {cost['cost']:,.2f} at {cost['per_million_tokens']:,.2f} per "
                         "million training tokens (TRAINING_COST_PER_MILLION_TOKENS)")
        return "\n".join(lines)


def _sensitive_lines(sensitive: dict[str, Any]) -> list[str]:
    """The screening section of the text report: policy, counts by kind, the first findings (masked)."""
    if not sensitive:
        return []
    policy = ", ".join(f"{category.replace('_', ' ')} {action}"
                       for category, action in sensitive["policy"].items())
    if not sensitive["count"]:
        return [f"sensitive data: none found (policy: {policy})"]
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in sensitive["by_kind"].items())
    shown = sensitive["findings"]
    lines = [f"sensitive data: {sensitive['count']:,} found ({kinds}; policy: {policy}; "
             f"{sensitive.get('redacted', 0):,} redacted)" + (f", first {len(shown)}:" if sensitive["count"] >
                                                             len(shown) else ":")]
    lines += [f"  line {f['line']}, message {f['message']}: {f['kind']} {f['masked']}" for f in shown]
    return lines


def _where(issue: Issue) -> str:
    return "file" if issue.line is None else f"line {issue.line}"


class Figures:
    """Per-conversation figures: the scanner's hot loop counts into them, stretches merge (keep it lean)."""

    __slots__ = ("chars", "max_messages", "max_tokens", "messages", "min_messages", "min_tokens", "rows",
                 "tokens")

    def __init__(self) -> None:
        self.rows = self.messages = self.chars = self.tokens = 0
        self.min_messages = self.min_tokens = 1 << 62
        self.max_messages = self.max_tokens = 0

    def merge(self, other: Figures) -> None:
        """Add the figures of conversations counted elsewhere (another stretch of the same upload)."""
        self.rows += other.rows
        self.messages += other.messages
        self.chars += other.chars
        self.tokens += other.tokens
        self.min_messages = min(self.min_messages, other.min_messages)
        self.max_messages = max(self.max_messages, other.max_messages)
        self.min_tokens = min(self.min_tokens, other.min_tokens)
        self.max_tokens = max(self.max_tokens, other.max_tokens)

    def stats(self) -> dict[str, Any]:
        """min/mean/max per conversation (zeros when there were none), and totals."""
        rows = self.rows or 1
        low = self.rows > 0
        return {
            "conversations": self.rows,
            "messages": {"min": self.min_messages if low else 0, "mean": round(self.messages / rows, 2),
                         "max": self.max_messages, "total": self.messages},
            "tokens": {"min": self.min_tokens if low else 0, "mean": round(self.tokens / rows, 1),
                       "max": self.max_tokens, "total": self.tokens},
            "chars": {"mean": round(self.chars / rows, 1), "total": self.chars},
        }
