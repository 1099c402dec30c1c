"""The running sum of an upload's tallies, in file order: findings, figures, the split and the staged files.

One pass adds its scanner's tallies as it goes; a parallel scan adds each range's tallies in range order,
moving the range's line numbers by the lines before it. Either way the same adds happen in the same order,
so the report (and the staged files) cannot tell the two apart.
"""

from __future__ import annotations

from shared.dataset import rules
from shared.dataset.report import Figures, Report
from shared.dataset.rules import ROLES, Issue
from shared.dataset.screening import Finding, findings
from shared.dataset.sinks import Sink
from shared.dataset.split import Split
from shared.dataset.tally import Limits, Tally


class Totals:
    """Adds tallies in file order; `finish` settles the split, decides validity and closes or aborts the
    sinks (a rejected upload never leaves a staged file)."""

    def __init__(self, limits: Limits, train: Sink | None = None, test: Sink | None = None) -> None:
        self.limits = limits
        self.sinks = (train, test)
        self.staging = self.sinks != (None, None)
        self.split = Split(limits.test_fraction if limits.split else 0.0, limits.test_rows_max)
        self.lines_before = 0  # lines of the stretches already finished
        self.errors: list[Issue] = []
        self.unreadable: list[Issue] = []  # listed first, wherever in the stream they were found
        self.error_count = 0
        self.warnings: list[Issue] = []
        self.warning_count = 0
        self.roles = [0] * len(ROLES)
        self.figures = Figures()
        self.over_limit = 0
        self.findings: list[Finding] = []
        self.finding_count = 0
        self.by_kind: dict[str, int] = {}
        self.redacted = 0
        self.untrained = 0

    def error(self, line: int | None, code: str, message: str) -> None:
        """A finding about the upload as a whole, after every line's."""
        self.error_count += 1
        if len(self.errors) < self.limits.max_errors_listed:
            self.errors.append(Issue(line, code, message))

    def cannot_read(self, code: str, message: str) -> None:
        """The upload cannot be read as what its name says (not gzip, truncated, not Parquet). Listed before
        every line's finding: a parallel scan may find it before or after merging a given range."""
        self.error_count += 1
        self.unreadable.append(Issue(None, code, message))

    def warn(self, line: int, code: str, message: str) -> None:
        """A warning about the upload as a whole."""
        self.warning_count += 1
        if len(self.warnings) < self.limits.max_errors_listed:
            self.warnings.append(Issue(line, code, message))

    def add(self, tally: Tally, staged: memoryview | None = None) -> None:
        """Add the next tally in file order, and stage its rows unless the upload is already known bad.
        `staged`: the tally's staged rows where they are kept elsewhere (shared memory), else its own."""
        cap, offset = self.limits.max_errors_listed, self.lines_before
        self.errors += [_moved(e, offset) for e in tally.errors[: cap - len(self.errors)]]
        self.warnings += [_moved(w, offset) for w in tally.warnings[: cap - len(self.warnings)]]
        self.error_count += tally.error_count
        self.warning_count += tally.warning_count
        self.figures.merge(tally.figures)
        self.roles = [a + b for a, b in zip(self.roles, tally.roles, strict=True)]
        self.over_limit += tally.over_limit
        self._add_findings(tally, offset)
        self.untrained += tally.untrained
        if self.staging:
            self.split.take(tally.keys, tally.tokens, memoryview(tally.staged) if staged is None else staged,
                            tally.ends)
        else:
            self.split.take(tally.keys, tally.tokens)
        self.drain()
        if tally.done:
            self.lines_before += tally.lines

    def _add_findings(self, tally: Tally, offset: int) -> None:
        room = self.limits.max_findings_listed - len(self.findings)
        self.findings += [f.moved(offset) for f in tally.findings[:max(room, 0)]]
        self.finding_count += tally.finding_count
        for kind, n in tally.by_kind.items():
            self.by_kind[kind] = self.by_kind.get(kind, 0) + n
        self.redacted += tally.redacted

    def drain(self) -> None:
        """Hand routed rows to the sinks (views, valid only now); once the upload is known bad, stop writing
        and just count."""
        for rows, sink in ((self.split.train, self.sinks[0]), (self.split.test, self.sinks[1])):
            if sink is not None and self.error_count == 0:
                for piece in rows:
                    sink.write(piece)
            rows.clear()

    def finish(self, *, content_sha256: str, size: int, format: str) -> Report:
        """Settle the split, decide validity, close or abort the sinks, and write the report."""
        self.split.finish()
        self.drain()
        if self.figures.rows == 0 and self.error_count == 0 and not self.untrained:
            self.error(None, rules.EMPTY_FILE, "the upload has no conversations; each line should be "
                       'one JSON object with a "messages" array')
        self._enough_rows()
        estimated = self.split.train_tokens * self.limits.epochs
        budget = self.limits.max_tokens_per_run
        if budget is not None and estimated > budget:
            self.error(None, rules.TOKEN_BUDGET_EXCEEDED,
                       f"about {estimated:,} training tokens ({self.split.train_tokens:,} x "
                       f"{self.limits.epochs} epoch(s)) exceed the budget of {budget:,} tokens per run "
                       "(MAX_TOKENS_PER_RUN, or a manifest's max_tokens_per_run); upload fewer or shorter "
                       "conversations, or raise the budget")
        self.errors = (self.unreadable + self.errors)[: self.limits.max_errors_listed]
        valid = self.error_count == 0
        for sink in self.sinks:
            if sink is not None:
                sink.close() if valid else sink.abort()
        stats = self.figures.stats()
        stats["roles"] = dict(zip(ROLES, self.roles, strict=True))
        stats["epochs"] = self.limits.epochs
        stats["token_estimate"] = "chars/4 + 4 per message + 3"
        stats["conversations_over_token_limit"] = self.over_limit
        stats["conversations_with_nothing_to_learn"] = self.untrained
        stats["token_budget"] = budget
        price = self.limits.cost_per_million_tokens
        if price is not None:
            stats["cost_estimate"] = {"cost": round(estimated / 1e6 * price, 2), "per_million_tokens": price}
        screening = self.limits.screening
        sensitive = {} if screening is None else findings.section(
            screening, self.findings, self.finding_count, self.by_kind, self.redacted)
        return Report(valid=valid, rows=self.figures.rows, train_rows=self.split.train_rows,
                      test_rows=self.split.test_rows, errors=self.errors, error_count=self.error_count,
                      warnings=self.warnings, warning_count=self.warning_count, stats=stats,
                      content_sha256=content_sha256, estimated_tokens=estimated, bytes=size, format=format,
                      sensitive=sensitive)

    def _enough_rows(self) -> None:
        """Enough training rows to be worth a job, and (when split here) a test row for the deploy gate."""
        rows, wanted = self.figures.rows, self.limits.min_training_rows
        if rows == 0 and not self.untrained:
            return  # an empty file is its own error
        if rows and self.limits.split and self.split.test_rows == 0:
            self.error(None, rules.TOO_FEW_ROWS_TO_SPLIT, f"only {rows} conversation(s): none is left to "
                       "test the model before it is deployed; upload more, or name a test file in a manifest")
        training = self.split.train_rows  # unsplit, every row is a training row
        if training < wanted:
            held = f" ({self.split.test_rows} more held out for testing)" if self.limits.split else ""
            if self.untrained:  # weight-0 answers only: these conversations teach nothing
                held += (f"; {self.untrained:,} more have no assistant turn of weight 1 and are not training "
                         "examples")
            self.error(None, rules.TOO_FEW_TRAINING_ROWS,
                       f"{training} training conversation(s){held}; a run needs at least {wanted:,} "
                       "(MIN_TRAINING_ROWS): add conversations")

    def abort(self) -> None:
        """Reading failed: discard whatever was staged."""
        for sink in self.sinks:
            if sink is not None:
                sink.abort()


def _moved(issue: Issue, offset: int) -> Issue:
    """A stretch's finding with its line number counted from the start of the file."""
    if issue.line is None or not offset:
        return issue
    return Issue(issue.line + offset, issue.code, issue.message)
