"""The operations commands of `autopilot`, mirroring the HTTP API:

    autopilot status [--json] [--url URL]   runs, live endpoints, alerts (from the ledger, or a deployed app)
    autopilot drop FILE [--force]           upload FILE to the incoming container (force: train even if seen)
    autopilot redeploy RUN_ID [--url URL]   deploy a torn-down run's model again, following it until live
    autopilot up [--port N]                 Azurite + the devhost in the foreground; Ctrl-C stops both
    autopilot invoke --request-file FILE    call a live endpoint (see shared.cli_endpoint)
    autopilot endpoint credentials          its scoring URI and how to get its key

Settings come from the environment, then local.settings.json's "Values" (the devhost reads them the same way,
through shared.settings). With --url (or AUTOPILOT_URL) the command asks a running app's API instead, sending
AUTOPILOT_FUNCTION_KEY as the function key. `up` runs the devhost as its own program (`python -m devhost`),
so this package never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared import cli_endpoint
from shared.ops.figures import duration
from shared.settings import Settings, SettingsError, load_local_settings, parse_duration

if TYPE_CHECKING:
    from shared.lifecycle import Lifecycle

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_commands(subparsers: Any) -> None:
    """Add status, drop, redeploy and up to `autopilot`'s subparsers (each sets `run`)."""
    status = subparsers.add_parser("status", help="runs, live endpoints and recent alerts")
    status.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
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


def _call(method: str, url: str, path: str = "") -> tuple[int, Any, str]:
    """(status, JSON body, Location header) of a call to the app's API (`url` alone if `path` is empty)."""
    import httpx

    key = os.environ.get("AUTOPILOT_FUNCTION_KEY", "")
    target = f"{url.rstrip('/')}/api/{path}" if path else url
    response = httpx.request(method, target, timeout=60, headers={"x-functions-key": key} if key else {})
    try:
        return response.status_code, response.json(), response.headers.get("location", "")
    except ValueError:
        return response.status_code, {"error": response.text[:500]}, ""


def _status(args: argparse.Namespace) -> int:
    from shared.ops import overview

    if args.url:
        code, view, _ = _call("GET", args.url, "runs")
        if code != 200:
            print(f"autopilot status: {args.url} answered {code}: {view.get('error', '')}", file=sys.stderr)
            return EXIT_FAILED
    else:
        view = overview(_lifecycle())
    print(json.dumps(view, indent=2, default=str) if args.json else status_text(view))
    return EXIT_OK


def status_text(view: dict[str, Any]) -> str:
    """The overview as a terminal table: one line per run, then endpoints and alerts."""
    lines = [f"{'RUN':<18} {'STATE':<12} {'UPLOAD':<34} {'MODEL':<30} {'UPDATED':<19}"]
    for run in view.get("runs", []):
        model = f"{run['model']['name']}:{run['model']['version']}" if run.get("model") else ""
        lines.append(f"{run['run_id']:<18} {run['state']:<12} {run['upload']['blob'][-34:]:<34} "
                     f"{model[-30:]:<30} {(run.get('updated_at') or '')[:19]:<19}")
    if not view.get("runs"):
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
    container = blob_service(settings.storage).get_container_client(settings.incoming_container)
    if not container.exists():
        container.create_container()
    name = args.name or path.name
    with path.open("rb") as data:
        container.upload_blob(name, data, overwrite=True, metadata={"force": "true"} if args.force else None)
    forced = " (force=true)" if args.force else ""
    print(f"uploaded {path} to {settings.incoming_container}/{name}{forced}")
    return EXIT_OK


def _redeploy(args: argparse.Namespace) -> int:
    """Ask for the redeploy (the app answers 202 at once), then follow the run until live or failed."""
    from shared.ops import ActionRefused, RunNotFound, find_run, redeploy, run_view

    if args.url:
        code, body, location = _call("POST", args.url, f"runs/{args.run_id}/redeploy")
        if code != 202:
            print(f"autopilot redeploy: {body.get('error', code)}", file=sys.stderr)
            return EXIT_FAILED

        def look() -> dict[str, Any]:
            status, document, _ = (_call("GET", location) if location
                                   else _call("GET", args.url, f"runs/{args.run_id}"))
            if status != 200:
                raise RuntimeError(f"GET {location or 'the run'} answered {status}: "
                                   f"{document.get('error', '')}")
            return dict(document)
    else:
        life = _lifecycle()
        try:
            body = run_view(redeploy(life, args.run_id))
        except (RunNotFound, ActionRefused) as exc:
            print(f"autopilot redeploy: {exc}", file=sys.stderr)
            return EXIT_FAILED

        def look() -> dict[str, Any]:
            return run_view(find_run(life, args.run_id))
    print(f"run {args.run_id}: redeploy accepted; {body['state']} on "
          f"{(body.get('endpoint') or {}).get('name', '?')}")
    if args.no_wait:
        return EXIT_OK
    return follow(look, parse_duration("--timeout", args.timeout).total_seconds(), args.interval,
                  seen=len(body.get("history", [])) - 1)


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
