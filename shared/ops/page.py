"""The status page, rendered on the server from the overview: one self-contained HTML document.

No scripts, no external styles or fonts, so it reads the same in a locked-down browser, a screen reader or
`curl`; `<details>` gives the per-run sections without JavaScript, and a meta refresh keeps it current.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from shared.evaluation import EvalReport, render
from shared.ops.figures import duration, loss_curve_svg

# The page is one self-contained document: inline styles and SVG only, nothing to load, no scripts, no forms.
# The policy says so to the browser, so an injected tag could neither run nor phone home.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer"}
BADGE = {"live": "ok", "succeeded": "ok", "registered": "ok", "torn_down": "muted", "duplicate": "muted",
         "arrived": "muted",
         "rejected": "bad", "failed": "bad", "canceled": "bad", "rolled_back": "bad"}
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1f2328;
background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600}code{font:12px ui-monospace,Menlo,monospace}
.badge{display:inline-block;white-space:nowrap;padding:1px 8px;border-radius:10px;font-size:12px;
font-weight:600;
background:#ddf4ff;color:#0550ae}.badge.ok{background:#dafbe1;color:#116329}
.badge.bad{background:#ffebe9;color:#a40e26}.badge.muted{background:#eaeef2;color:#57606a}
.meta{color:#57606a}.run{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:10px 0}
.run summary{cursor:pointer;font-weight:600}.cols{display:flex;gap:32px;flex-wrap:wrap}
ol.timeline{margin:6px 0;padding-left:20px}.sev-error{color:#a40e26}.sev-warning{color:#7d4e00}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:600;color:#116329}
.evaluation{flex-basis:100%}
"""


def render_status_page(view: Mapping[str, Any], refresh_seconds: int = 30) -> str:
    """The whole page for an `overview()` dict."""
    runs: Sequence[Mapping[str, Any]] = view.get("runs", [])
    counts = ", ".join(f"{n} {escape(state.replace('_', ' '))}"
                       for state, n in view.get("counts", {}).items())
    body = [
        "<h1>Fine-Tune Autopilot</h1>",
        f'<p class="meta">{len(runs)} run{"" if len(runs) == 1 else "s"}{": " + counts if counts else ""} · '
        'platform '
        f'<b>{_e(view.get("platform"))}</b> · idle TTL {duration(view.get("idle_ttl_seconds"))} · '
        f'generated {_e(_short_time(view.get("generated_at")))} (refreshes every {refresh_seconds} s)</p>',
        _projects(view.get("projects", [])),
        _endpoints(view.get("endpoints", [])),
        _runs_table(runs),
        _alerts(view.get("alerts", [])),
        "<h2>Run details</h2>",
        *(_run_section(run, open_=index < 3) for index, run in enumerate(runs)),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="refresh" content="{refresh_seconds}">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>Fine-Tune Autopilot — runs</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def badge(state: str) -> str:
    """A state badge, colored by whether the state is good, bad or over."""
    label = _e(state.replace("_", " "))
    return f'<span class="badge {BADGE.get(state, "")}" data-state="{_e(state)}">{label}</span>'


def _endpoints(endpoints: Sequence[Mapping[str, Any]]) -> str:
    if not endpoints:
        return "<h2>Live endpoints</h2><p class=\"meta\">No managed endpoint is running: nothing bills.</p>"
    rows = "".join(
        f"<tr><td><code>{_e(e['name'])}</code>{_health(e.get('health'))}</td><td>{_e(e.get('model'))}</td>"
        f"<td><code>{_e(e.get('run_id'))}</code></td>"
        f"<td>{_e(', '.join(f'{d} {p} %' for d, p in e.get('traffic', {}).items()))}</td>"
        f"<td>{duration(e.get('idle_seconds')) if e.get('activity_known') else 'unknown (kept)'}</td>"
        f"<td>{_e(_short_time(e.get('last_request_at')) or 'never')}</td>"
        f"<td>{duration(e.get('teardown_in_seconds'))}</td></tr>" for e in endpoints)
    return ("<h2>Live endpoints</h2><table><thead><tr><th>endpoint</th><th>model</th><th>run</th>"
            "<th>traffic</th><th>idle for</th><th>last request</th><th>teardown in</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _projects(projects: Sequence[Mapping[str, Any]]) -> str:
    """One line per project: which assistants are live, asleep, training or failing, and what they billed."""
    if not projects:
        return ""
    rows = "".join(
        f"<tr><td><code>{_e(p['name'])}</code></td><td>{badge(_PROJECT_BADGE.get(p['state'], p['state']))}"
        f"{_TRAINING if p.get('training') and p['state'] != 'training' else ''}"
        f"</td><td>{_e(p.get('live_version') or '')}</td><td><code>{_e(p.get('endpoint'))}</code></td>"
        f"<td>{_e(p.get('runs'))}</td><td>{_billed(p.get('billed_hours'))}</td></tr>" for p in projects)
    return ("<h2>Projects</h2><table><thead><tr><th>project (model)</th><th>state</th><th>live version</th>"
            "<th>endpoint</th><th>runs</th><th>billed (torn-down deployments)</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


_TRAINING = ' <span class="meta">and training</span>'
# A project's state shown with the badge of the run state it stands for.
_PROJECT_BADGE = {"asleep": "torn_down", "training": "running", "failing": "failed",
                  "never deployed": "received"}


def _billed(hours: Any) -> str:
    return duration(float(hours) * 3600) if isinstance(hours, int | float) else "—"


def _health(health: str | None) -> str:
    # Only the bad news is shown: an endpoint whose deployment stopped answering still bills until redeployed.
    return ' <span class="badge bad">unhealthy: redeploy</span>' if health == "unhealthy" else ""


def _runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    if not runs:
        return ("<h2>Runs</h2><p class=\"meta\">No runs yet. Drop a chat JSONL into the incoming container "
                "(<code>autopilot drop FILE</code>).</p>")
    rows = []
    # Grouped by project (a heading row each), newest first within a project.
    ordered = sorted(runs, key=lambda r: str(r.get("project") or ""))  # stable: keeps newest first
    shown_project: object = None
    for run in ordered:
        if run.get("project") and run.get("project") != shown_project:
            shown_project = run.get("project")
            rows.append(f'<tr class="project"><th colspan="9">project <code>{_e(shown_project)}</code>'
                        "</th></tr>")
        model, job, endpoint = run.get("model"), run.get("job"), run.get("endpoint")
        rows.append(
            f'<tr id="row-{_e(run["run_id"])}"><td><a href="#run-{_e(run["run_id"])}"><code>'
            f'{_e(run["run_id"])}</code></a></td><td>{badge(str(run["state"]))}</td>'
            f"<td>{_e(run['upload']['blob'])}{_waiting(run.get('waiting'))}</td>"
            f"<td>{_e(run.get('dataset', {}).get('rows', ''))}</td>"
            f"<td>{_job_link(job)}</td>"
            f"<td>{_e(_model(model))}</td>"
            f"<td>{_e(endpoint['name']) if endpoint else ''}</td>"
            f"<td>{_e(_short_time(run.get('updated_at')))}</td><td>{_costs(run.get('costs', {}))}</td></tr>")
    return ("<h2>Runs</h2><table><thead><tr><th>run</th><th>state</th><th>upload</th><th>rows</th>"
            "<th>job</th><th>model</th><th>endpoint</th><th>updated</th><th>cost</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _waiting(text: str | None) -> str:
    return f'<br><span class="meta">{_e(text)}</span>' if text else ""


def _run_section(run: Mapping[str, Any], open_: bool) -> str:
    job = run.get("job") or {}
    metrics: Mapping[str, float] = job.get("metrics") or {}
    figures = "".join(f"<tr><th>{_e(k)}</th><td>{v:.4g}</td></tr>" for k, v in sorted(metrics.items()))
    validation = job.get("validation_loss") or []
    curve = loss_curve_svg(job.get("loss_curve") or [],
                           eval_loss=validation[-1][1] if validation else metrics.get("eval_loss"))
    missing = _not_recorded(job.get("not_recorded") or {})
    lineage = [("upload", run["upload"]["blob"]), ("content sha256", run["upload"]["content_sha256"][:16]),
               ("base model", run.get("base_model")),
               ("trained on from", " → ".join(filter(None, [run.get("lineage")])) if run.get("started_from")
                else ""), ("job", job.get("id")),
               ("model", f"{run['model']['name']}:{run['model']['version']}" if run.get("model") else ""),
               ("endpoint", f"{run['endpoint']['name']}/{run['endpoint']['deployment']}"
                if run.get("endpoint") else ""), ("screening", _screening(run.get("screening"))),
               ("error", run.get("error"))]
    facts = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in lineage if v)
    actions = ", ".join(f"<code>POST {_e(run['links'][a])}</code>" for a in run.get("actions", []))
    return (f'<details class="run" id="run-{_e(run["run_id"])}"{" open" if open_ else ""}><summary>'
            f'<code>{_e(run["run_id"])}</code> {badge(str(run["state"]))} <span class="meta">'
            f'{_e(run["upload"]["blob"])}</span></summary><div class="cols">'
            f"<div><h3>Lineage</h3><table>{facts}</table>"
            f"{'<p>Actions: ' + actions + '</p>' if actions else ''}</div>"
            f"<div><h3>Timeline</h3>{_timeline(run.get('history', []))}</div>"
            + (f"<div><h3>Training</h3>{curve}<table>{figures}</table>{missing}</div>"
               if figures or curve or missing else "")
            + _evaluation(job.get("evaluation"))
            + (f"<div><h3>Cost</h3>{_costs(run['costs'], long=True)}</div>" if run.get("costs") else "")
            + (f"<div><h3>Alerts</h3><ul>{''.join(f'<li>{_e(a)}</li>' for a in run['alerts'])}</ul></div>"
               if run.get("alerts") else "")
            + "</div></details>")


def _not_recorded(missing: Mapping[str, str]) -> str:
    """The figures the platform's job does not record, each with why (no silent gap on the page)."""
    return "".join(f'<p class="meta">No {_e(name.replace("_", " "))} here: {_e(why)}</p>'
                   for name, why in sorted(missing.items()))


def _screening(screening: Mapping[str, Any] | None) -> str:
    """`secrets reject, personal data redact; found: email 2` (kinds and counts only, never a value)."""
    if not screening:
        return ""
    policy = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in screening["policy"].items())
    found = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in screening.get("found", {}).items())
    return f"{policy}; found: {found or 'nothing'}"


def _evaluation(data: Mapping[str, Any] | None) -> str:
    """The job's evaluation report: base model, this run's model and the live one on the test split."""
    if not data:
        return ""
    return (f'<div class="evaluation"><h3>Evaluation on the test split</h3>'
            f"{render.fragment(EvalReport.from_dict(data))}</div>")


def _timeline(history: Sequence[Mapping[str, str]]) -> str:
    if not history:
        return ""
    start = _parse(history[0].get("at"))
    items = []
    for entry in history:
        at = _parse(entry.get("at"))
        offset = f"+{duration((at - start).total_seconds())}" if at and start else ""
        note = f' <span class="meta">{_e(entry["note"])}</span>' if entry.get("note") else ""
        items.append(f"<li>{badge(entry.get('state', ''))} {_e(_short_time(entry.get('at')))} "
                     f'<span class="meta">{offset}</span>{note}</li>')
    return f'<ol class="timeline">{"".join(items)}</ol>'


def _alerts(alerts: Sequence[Mapping[str, Any]]) -> str:
    if not alerts:
        return "<h2>Recent alerts</h2><p class=\"meta\">None.</p>"
    rows = "".join(
        f'<tr class="sev-{_e(a.get("severity"))}"><td>{_e(_short_time(a.get("at")))}</td>'
        f"<td>{_e(a.get('severity'))}</td><td><code>{_e(a.get('alert_class'))}</code></td>"
        f"<td><code>{_e(a.get('run_id'))}</code></td><td>{_e(a.get('summary'))}</td></tr>" for a in alerts)
    return ("<h2>Recent alerts</h2><table><thead><tr><th>when</th><th>severity</th><th>alert</th><th>run</th>"
            f"<th>summary</th></tr></thead><tbody>{rows}</tbody></table>")


def _model(model: Mapping[str, Any] | None) -> str:
    return f"{model['name']}:{model['version']}" if model else ""


def _job_link(job: Mapping[str, Any] | None) -> str:
    if not job:
        return ""
    status = f' <span class="meta">{_e(job["status"])}</span>' if job.get("status") else ""
    if job.get("url"):
        return f'<a href="{_e(job["url"])}"><code>{_e(job["id"])}</code></a>{status}'
    return f"<code>{_e(job['id'])}</code>{status}"


def _costs(costs: Mapping[str, Any], long: bool = False) -> str:
    if not costs:
        return ""
    # What a reader can check: how long the deployment billed, and how long it has been asleep since
    # (nothing billing). No "hours saved" against a made-up reference.
    billed = costs.get("endpoint_hours")
    hours = costs.get("asleep_hours")  # as of the overview's time
    asleep = float(hours) * 3600 if isinstance(hours, int | float) else None
    parts = [f"billed {_billed(billed)}" if billed is not None else "",
             f"asleep {duration(asleep)} since" if asleep is not None else ""]
    if not long:
        return _e(" · ".join(p for p in parts if p))
    shown = {**({"billed": _billed(billed)} if billed is not None else {}),
             **({"idle before sleep": _billed(costs["idle_hours"])} if costs.get("idle_hours") is not None
                else {}),
             **({"asleep since": f"{_short_time(costs.get('asleep_since'))} ({duration(asleep)})"}
                if asleep is not None else {}),
             **{k: v for k, v in costs.items() if k in ("teardowns", "wakes")}}
    return "<table>" + "".join(f"<tr><th>{_e(k.replace('_', ' '))}</th><td>{_e(v)}</td></tr>"
                               for k, v in shown.items()) + "</table>"


def _parse(raw: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(raw)) if raw else None
    except ValueError:
        return None


def _short_time(raw: Any) -> str:
    at = _parse(raw)
    return at.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if at else ""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))
