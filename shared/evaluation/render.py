"""The evaluation report as HTML: one fragment for the status page, and a whole page for the MLflow artifact.

The fragment uses only tables and classes the status page styles; the page wraps it with its own small style.
Every value is escaped: answers are model output and references are user data.
"""

from __future__ import annotations

from html import escape
from typing import Any

from shared.evaluation.report import EvalReport

LABELS = {"base": "base model", "candidate": "fine-tuned (this run)", "live": "live deployment"}
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1f2328}
table{border-collapse:collapse;margin:8px 0 16px}th,td{text-align:left;padding:5px 10px;
border-bottom:1px solid #eaeef2;vertical-align:top}th{background:#f6f8fa}.meta{color:#57606a}
td.num{text-align:right;font-variant-numeric:tabular-nums}.best{font-weight:600}
"""


def fragment(report: EvalReport) -> str:
    """The scores table and the side-by-side samples, as an HTML fragment."""
    best_loss = _best([s.loss for s in report.scores], lower=True)
    best_rouge = _best([s.rouge_l for s in report.scores], lower=False)
    rows = "".join(
        f"<tr><th>{_e(LABELS.get(s.role, s.role))}</th><td><code>{_e(s.name)}</code></td>"
        f"{_num(s.loss, best_loss)}{_num(s.perplexity, None, '.2f')}{_num(s.rouge_l, best_rouge)}"
        f"<td class=\"meta\">{_e(s.note)}</td></tr>" for s in report.scores)
    table = ("<table class=\"eval\"><thead><tr><th>model</th><th></th><th>held-out loss</th>"
             f"<th>perplexity</th><th>ROUGE-L</th><th></th></tr></thead><tbody>{rows}</tbody></table>")
    meta = (f"<p class=\"meta\">{report.test_rows} test conversation{'s' if report.test_rows != 1 else ''}; "
            f"ROUGE-L over the first {report.answered}, greedy answers of up to {report.max_new_tokens} "
            "tokens. Lower loss and higher ROUGE-L are better.</p>")
    remarks = "".join(f"<p class=\"meta\">{_e(note)}</p>" for note in report.notes)
    return table + meta + remarks + _samples(report)


def page(report: EvalReport, title: str) -> str:
    """A self-contained HTML document (the eval_report.html artifact)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{_e(title)}</h1>{fragment(report)}</body></html>\n")


def text_table(report: EvalReport) -> str:
    """The scores and samples as plain text, for a terminal."""
    lines = [f"{'model':<24} {'held-out loss':>13} {'perplexity':>11} {'ROUGE-L':>8}"]
    for s in report.scores:
        lines.append(f"{LABELS.get(s.role, s.role):<24} {_fmt(s.loss):>13} {_fmt(s.perplexity, '.2f'):>11} "
                     f"{_fmt(s.rouge_l):>8}" + (f"  ({s.note})" if s.note else ""))
    lines += list(report.notes)
    for sample in report.samples:
        lines += ["", f"Q: {sample.prompt}"]
        lines += [f"  {LABELS.get(role, role) + ':':<24} {answer}" for role, answer in sample.answers.items()]
        lines.append(f"  {'reference:':<24} {sample.reference}")
    return "\n".join(lines)


def _samples(report: EvalReport) -> str:
    if not report.samples:
        return ""
    roles = [s.role for s in report.scores if any(s.role in x.answers for x in report.samples)]
    head = "".join(f"<th>{_e(LABELS.get(r, r))}</th>" for r in roles)
    rows = "".join(
        f"<tr><td>{_e(x.prompt)}</td>{''.join(_cell(x.answers.get(r)) for r in roles)}"
        f"<td>{_e(x.reference)}</td></tr>" for x in report.samples)
    return (f"<table class=\"samples\"><thead><tr><th>held-out prompt</th>{head}<th>reference</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")


def _cell(text: str | None) -> str:
    return f"<td>{_e(text)}</td>"


def _best(values: list[float | None], lower: bool) -> float | None:
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return None
    return min(known) if lower else max(known)


def _num(value: float | None, best: float | None, spec: str = ".3f") -> str:
    marked = " best" if best is not None and value == best else ""
    return f'<td class="num{marked}">{_fmt(value, spec)}</td>'


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))

