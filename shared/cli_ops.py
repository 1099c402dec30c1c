"""The operations commands of `autopilot`, mirroring the HTTP API:

    autopilot status [--json] [--url URL]   runs, live endpoints, alerts (from the ledger, or a deployed app)
    autopilot drop FILE [--force]           upload FILE to the incoming container (force: train even if seen)
    autopilot redeploy RUN_ID [--url URL]   deploy a torn-down run's model again, following it until live
    autopilot retry RUN_ID [--url URL]      submit a failed run's staged data again, as a new job
    autopilot up [--port N]                 Azurite + the devhost in the foreground; Ctrl-C stops both
    autopilot invoke --request-file FILE    call a live endpoint (see shared.cli_endpoint)
    autopilot endpoint credentials          its scoring URI and how to get its key

Settings come from the environment, then local.settings.json's "Values" (the devhost reads them the same way,
through shared.settings). With --url (or AUTOPILOT_URL) the command asks a running app's API instead, sending
AUTOPILOT_FUNCTION_KEY as the function key. `up` runs the devhost as its own program (`python -m devhost`),
so this package never imports it. A run id is checked for its shape before any request, and every part of a
URL path is escaped; what goes wrong is one line saying what to do (CliError, exit 2; see shared.cli).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from shared import cli_endpoint
from shared.local_settings import load_local_settings
from shared.names import name_problem
from shared.ops.figures import duration
from shared.runs.record import is_run_id
from shared.settings import Settings, SettingsError, parse_duration

if TYPE_CHECKING:
    from shared.lifecycle import Lifecycle

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """Something the user can fix (a bad argument, an unreachable app or storage): one line, exit 2."""


def add_commands(subparsers: Any) -> None:
    """Add status, drop, redeploy and up to `autopilot`'s subparsers (each sets `run`)."""
    status = subparsers.add_parser("status", help="runs, live endpoints and recent alerts")
    status.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    status.add_argument("--project", help="one project's runs only (its folder under incoming/)")
    _remote(status)
    status.set_defaults(run=_status)
    drop = subparsers.add_parser("drop", help="upload a chat JSONL to the incoming container")
    drop.add_argument("file", type=Path, help="the chat JSONL (or .parquet) to upload")
    drop.add_argument("--force", action="store_true",
                      help="train even if the same content was trained before (metadata force=true)")
    drop.add_argument("--name", help="blob name (default: the file's name)")
    drop.set_defaults(run=_drop)
    redeploy = subparsers.add_parser("redeploy", help="deploy a torn-down run's model again and follow it")
    redeploy.add_argument("run_id", help="the run, e.g. run-1a2b3c4d5e6f")
    redeploy.add_argument("--no-wait", action="store_true", help="return once the request is accepted")
    redeploy.add_argument("--timeout", default="45m", help="how long to follow it (default 45m)")
    redeploy.add_argument("--interval", type=float, default=5.0, help="seconds between looks (default 5)")
    _remote(redeploy)
    redeploy.set_defaults(run=_redeploy)
    retry = subparsers.add_parser("retry", help="submit a failed or canceled run's data again as a new job")
    retry.add_argument("run_id", help="the run, e.g. run-1a2b3c4d5e6f")
    _remote(retry)
    retry.set_defaults(run=_retry)
    up = subparsers.add_parser("up", help="Azurite and the devhost in the foreground; Ctrl-C stops both")
    up.add_argument("--port", type=int, default=7071, help="devhost port on 127.0.0.1 (default 7071)")
    up.add_argument("--no-azurite", action="store_true", help="use AUTOPILOT_STORAGE as it is set")
    up.set_defaults(run=_up)
    cli_endpoint.add_commands(subparsers)


def _remote(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("AUTOPILOT_URL"),
                        help="a running app, e.g. https://APP.azurewebsites.net (default: AUTOPILOT_URL)")


def _settings() -> Settings:
    load_local_settings()
    return Settings.from_env()


def _lifecycle() -> Lifecycle:
    from shared.wiring import build_lifecycle

    return build_lifecycle(_settings())


def _call(method: str, url: str, *parts: str, params: dict[str, str] | None = None) -> tuple[int, Any, str]:
    """(status, JSON body, Location header) of a call to the app's API at `url` + /api/ + `parts` (each
    escaped, so a part can never become a path or a query of its own); `url` alone if there are none."""
    import httpx

    key = os.environ.get("AUTOPILOT_FUNCTION_KEY", "")
    target = f"{app_url(url)}/api/{'/'.join(quote(p, safe='') for p in parts)}" if parts else url
    try:
        response = httpx.request(method, target, timeout=60, params=params,
                                 headers={"x-functions-key": key} if key else {})
    except httpx.HTTPError as exc:
        raise CliError(f"could not reach {url} ({type(exc).__name__}: {str(exc)[:200]}); is the app running? "
                       "Check --url or AUTOPILOT_URL") from None
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:500]}
    return response.status_code, body if isinstance(body, dict) else {"value": body}, \
        response.headers.get("location", "")


def app_url(url: str) -> str:
    """`url` without a trailing slash, once checked to be an http(s) address (CliError otherwise)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--url {url!r} is not an app's address; give one like http://127.0.0.1:7071 or "
                       "https://APP.azurewebsites.net")
    return url.strip().rstrip("/")


def run_id_argument(run_id: str) -> str:
    """`run_id` if it has a run id's shape (checked before any request); CliError otherwise."""
    if not is_run_id(run_id):
        shown = run_id if len(run_id) <= 40 else run_id[:40] + "…"
        raise CliError(f"{shown!r} is not a run id (like run-1a2b3c4d5e6f); `autopilot status` lists them")
    return run_id


def blob_name_argument(name: str) -> str:
    """A blob name given with --name: relative, no `.`/`..` or empty parts, no backslashes (CliError)."""
    problem = name_problem(name)
    parts = PurePosixPath(name).parts
    if problem is None and (name.startswith("/") or "\\" in name or name.endswith("/")
                            or any(p in (".", "..") for p in name.split("/")) or not parts):
        problem = "it must be a relative name like team/chats.jsonl, without '.', '..' or backslashes"
    if problem is not None:
        raise CliError(f"--name {name!r}: {problem}")
    return name


def _status(args: argparse.Namespace) -> int:
    from shared.ops import overview

    project = getattr(args, "project", None)
    if args.url:
        code, view, _ = _call("GET", args.url, "runs", params={"project": project} if project else None)
        if code != 200:
            print(f"autopilot status: {args.url} answered {code}: {view.get('error', '')}", file=sys.stderr)
            return EXIT_FAILED
    else:
        view = overview(_lifecycle(), project=project)
    print(json.dumps(view, indent=2, default=str) if args.json else status_text(view))
    return EXIT_OK


def status_text(view: dict[str, Any]) -> str:
    """The overview as a terminal table: one line per run, then endpoints and alerts. Columns are as wide as
    their widest id or state, so they line up; long uploads and models keep their ends, marked with '…'."""
    runs = view.get("runs", [])
    projects = [f"project {p['name']}: {p['state']}" + (f", live {p['live_version']}" if p.get("live_version")
                                                        else "") + (", training" if p.get("training")
                                                                    and p["state"] != "training" else "")
                + (f", billed {duration(p['billed_hours'] * 3600)}" if p.get("billed_hours") is not None
                   else "") for p in view.get("projects", [])]
    rows = [(run["run_id"], run["state"], run["upload"]["blob"] + (f" ({run['waiting']})"
                                                                    if run.get("waiting") else ""),
             f"{run['model']['name']}:{run['model']['version']}" if run.get("model") else "",
             (run.get("updated_at") or "")[:19]) for run in runs]
    id_width = max([len("RUN"), *(len(r[0]) for r in rows)])
    state_width = max([len("STATE"), *(len(r[1]) for r in rows)])
    lines = [*projects, *([""] if projects else []),
             f"{'RUN':<{id_width}} {'STATE':<{state_width}} {'UPLOAD':<34} {'MODEL':<30} UPDATED"]
    for run_id, state, upload, model, updated in rows:
        lines.append(f"{run_id:<{id_width}} {state:<{state_width}} {fit(upload, 34):<34} "
                     f"{fit(model, 30):<30} {updated}")
    if not runs:
        lines.append("(no runs yet: `autopilot drop FILE` uploads one)")
    lines.append("")
    for endpoint in view.get("endpoints", []):
        idle = duration(endpoint.get("idle_seconds")) if endpoint.get("activity_known") else "unknown"
        lines.append(f"endpoint {endpoint['name']}: {endpoint.get('model') or '?'} "
                     f"(run {endpoint.get('run_id')}), idle {idle}, "
                     f"teardown in {duration(endpoint.get('teardown_in_seconds'))}")
    if not view.get("endpoints"):
        lines.append("no managed endpoint is running")
    for alert in view.get("alerts", [])[:5]:
        lines.append(f"alert {str(alert.get('at') or '')[:19]} {alert.get('alert_class')} "
                     f"{alert.get('run_id')}: {alert.get('summary') or ''}")
    return "\n".join(lines)


def fit(text: str, width: int) -> str:
    """`text` in at most `width` characters: its end kept (the file name, the version), '…' where it was
    cut."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1:]


def _drop(args: argparse.Namespace) -> int:
    from shared.storage import blob_service

    path: Path = args.file
    if not path.is_file():
        print(f"autopilot drop: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = _settings()
    except SettingsError as exc:
        print(f"autopilot drop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    name = blob_name_argument(args.name) if args.name else path.name
    # Someone is waiting at the terminal: say so at once, not after the app's patient retries (they rerun).
    service = blob_service(settings.storage, retry_total=0)
    container = service.get_container_client(settings.incoming_container)
    if not container.exists():
        container.create_container()
    with path.open("rb") as data:
        container.upload_blob(name, data, overwrite=True, metadata={"force": "true"} if args.force else None)
    forced = " (force=true)" if args.force else ""
    print(f"uploaded {path} to {settings.incoming_container}/{name}{forced}")
    return EXIT_OK


def _redeploy(args: argparse.Namespace) -> int:
    """Ask for the redeploy (the app answers 202 at once), then follow the run until live or failed."""
    from shared.ops import ActionRefused, RunNotFound, find_run, redeploy, run_view

    run_id = run_id_argument(args.run_id)
    if args.url:
        code, body, location = _call("POST", args.url, "runs", run_id, "redeploy")
        if code != 202 or "state" not in body:
            print(f"autopilot redeploy: {body.get('error', code)}", file=sys.stderr)
            return EXIT_FAILED

        def look() -> dict[str, Any]:
            status, document, _ = (_call("GET", location) if location
                                   else _call("GET", args.url, "runs", run_id))
            if status != 200:
                raise RuntimeError(f"GET {location or 'the run'} answered {status}: "
                                   f"{document.get('error', '')}")
            return dict(document)
    else:
        life = _lifecycle()
        try:
            body = run_view(redeploy(life, run_id))
        except (RunNotFound, ActionRefused) as exc:
            print(f"autopilot redeploy: {exc}", file=sys.stderr)
            return EXIT_FAILED

        def look() -> dict[str, Any]:
            return run_view(find_run(life, run_id))
    print(f"run {run_id}: redeploy accepted; {body['state']} on "
          f"{(body.get('endpoint') or {}).get('name', '?')}")
    if args.no_wait:
        return EXIT_OK
    return follow(look, parse_duration("--timeout", args.timeout).total_seconds(), args.interval,
                  seen=len(body.get("history", [])) - 1)


def _retry(args: argparse.Namespace) -> int:
    """Ask for a failed or canceled run's staged data to be submitted again (the app answers 202 at once)."""
    from shared.ops import ActionRefused, RunNotFound, retry, run_view

    run_id = run_id_argument(args.run_id)
    if args.url:
        code, body, _ = _call("POST", args.url, "runs", run_id, "retry")
        if code != 202 or "state" not in body:
            print(f"autopilot retry: {body.get('error', code)}", file=sys.stderr)
            return EXIT_FAILED
    else:
        try:
            body = run_view(retry(_lifecycle(), run_id))
        except (RunNotFound, ActionRefused) as exc:
            print(f"autopilot retry: {exc}", file=sys.stderr)
            return EXIT_FAILED
    attempt = (body.get("job") or {}).get("attempt") or "a new"
    print(f"run {run_id}: retry accepted; attempt {attempt} is {body['state']}, its job is submitted next "
          "(`autopilot status` follows it)")
    return EXIT_OK


def follow(look: Any, timeout: float, interval: float, *, seen: int = 0) -> int:
    """Print each new step of the run's history until it is live (0) or ended otherwise (1), or time runs
    out."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        document = look()
        history = document.get("history", [])
        for entry in history[max(seen, 0):]:
            step = f" [{entry['step']}]" if entry.get("step") else ""
            at = str(entry.get("at", ""))[11:19]
            print(f"  {at}  {entry.get('state', ''):<11}{step} {entry.get('note', '')}")
        seen = len(history)
        state = document.get("state")
        if state == "live":
            endpoint = document.get("endpoint") or {}
            print(f"run {document['run_id']} is live on {endpoint.get('name')}/{endpoint.get('deployment')}")
            return EXIT_OK
        if state != "deploying":
            print(f"run {document['run_id']} ended {state}: {document.get('error') or ''}", file=sys.stderr)
            return EXIT_FAILED
        if time.monotonic() > deadline:
            print(f"run {document['run_id']} is still deploying; `autopilot status` shows where it is",
                  file=sys.stderr)
            return EXIT_FAILED
        time.sleep(interval)


def _up(args: argparse.Namespace) -> int:
    """Become `python -m devhost`: Ctrl-C then reaches it directly, and it stops everything it started."""
    argv = [sys.executable, "-m", "devhost", "--port", str(args.port),
            *(["--no-azurite"] if args.no_azurite else [])]
    sys.stdout.flush()
    os.execv(sys.executable, argv)
    return EXIT_FAILED  # not reached: execv replaces this process
