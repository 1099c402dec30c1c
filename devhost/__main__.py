"""`python -m devhost`: Azurite plus the devhost in the foreground until Ctrl-C, then both stop cleanly.

App settings come from the environment, then from local.settings.json's "Values" (the environment wins,
as with Core Tools). Unless --no-azurite, Azurite runs with its data under <data dir>/azurite on the
standard ports and AUTOPILOT_STORAGE points at it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from devhost import azurite
from devhost.host import DevHost
from devhost.triggers import BLOB, EVENT_GRID, HTTP, QUEUE, TIMER, FunctionError
from shared.azurite import DEVELOPMENT_STORAGE
from shared.local_settings import LOCAL_SETTINGS, load_local_settings
from shared.settings import Settings, SettingsError
from shared.wiring import platform_processes

log = logging.getLogger("devhost")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=7071, help="devhost port on 127.0.0.1 (default 7071)")
    parser.add_argument("--data-dir", type=Path, help="AUTOPILOT_DATA_DIR (default: setting or .autopilot)")
    parser.add_argument("--app", default="function_app:app", help="the FunctionApp, module:attribute")
    parser.add_argument("--settings-file", type=Path, default=LOCAL_SETTINGS)
    parser.add_argument("--no-azurite", action="store_true", help="use AUTOPILOT_STORAGE as it is set")
    parser.add_argument("--connection-string", help="storage connection string (implies --no-azurite)")
    parser.add_argument("--azurite-ports", default="10000,10001,10002", help="blob,queue,table ports")
    for source in ("watcher", "timers", "relay", "queues"):
        parser.add_argument(f"--no-{source}", action="store_true", help=f"do not run the {source}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def _route_prefix(host_json: Path) -> str:
    """host.json's extensions.http.routePrefix; 'api' when unset, as in the Functions host."""
    if not host_json.exists():
        return "api"
    prefix = json.loads(host_json.read_text()).get("extensions", {}).get("http", {}).get("routePrefix")
    return "api" if prefix is None else str(prefix)


def _banner(host: DevHost) -> None:
    lines = ["Functions:"]
    for f in host.functions.values():
        if f.trigger_type == HTTP:
            methods = ",".join(str(m) for m in f.trigger.get("methods") or ["GET", "POST"])
            lines.append(f"  {f.name}: [{methods}] {host.base_url}/{host.route_prefix}/"
                         f"{f.trigger.get('route') or f.name}")
        elif f.trigger_type == BLOB:
            lines.append(f"  {f.name}: blobTrigger on {f.trigger['path']} -> POST {host.base_url}"
                         f"/runtime/webhooks/blobs?functionName=Host.Functions.{f.name}")
        elif f.trigger_type == EVENT_GRID:
            lines.append(f"  {f.name}: eventGridTrigger -> POST {host.base_url}"
                         f"/runtime/webhooks/eventgrid?functionName={f.name}")
        elif f.trigger_type == TIMER:
            lines.append(f"  {f.name}: timerTrigger '{f.trigger['schedule']}' "
                         f"(run now: POST {host.base_url}/admin/functions/{f.name})")
        elif f.trigger_type == QUEUE:
            lines.append(f"  {f.name}: queueTrigger on {f.trigger['queueName']} (maxDequeueCount "
                         f"{host.queue_options.max_dequeue_count}, then {f.trigger['queueName']}-poison)")
    log.info("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; exit 2 on a bad setting, with the message naming it."""
    args = _arguments(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for noisy in ("azure", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if load_local_settings(args.settings_file):
            log.info("app settings from %s (the environment overrides them)", args.settings_file)
    except SettingsError as exc:
        log.error("%s", exc)
        return 2
    if args.data_dir:
        os.environ["AUTOPILOT_DATA_DIR"] = str(args.data_dir)
    data_dir = Path(os.environ.get("AUTOPILOT_DATA_DIR", ".autopilot")).resolve()
    storage = None
    if args.connection_string:
        os.environ["AUTOPILOT_STORAGE"] = args.connection_string
    elif not args.no_azurite:
        blob, queue, table = (int(p) for p in args.azurite_ports.split(","))
        storage = azurite.start(data_dir / "azurite", blob_port=blob, queue_port=queue, table_port=table,
                                log=data_dir / "azurite.log")
        log.info("Azurite on 127.0.0.1:%d/%d/%d, data in %s", blob, queue, table, data_dir / "azurite")
        if os.environ.get("AUTOPILOT_STORAGE", DEVELOPMENT_STORAGE) != DEVELOPMENT_STORAGE:
            log.warning("AUTOPILOT_STORAGE now points at this Azurite; --no-azurite keeps the one set")
        os.environ["AUTOPILOT_STORAGE"] = storage.connection_string
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        with contextlib.ExitStack() as running:
            sys.path.insert(0, str(Path.cwd()))
            module, _, attribute = args.app.partition(":")
            app = getattr(importlib.import_module(module), attribute or "app")
            settings = Settings.from_env()
            # The embedded engine's endpoint servers live and die with `up` (stopped after the devhost);
            # the next start resumes them.
            for resumed in running.enter_context(platform_processes(settings)):
                log.info("endpoint %s is serving again", resumed)
            host = running.enter_context(DevHost(
                app, settings, port=args.port, watch_blobs=not args.no_watcher, timers=not args.no_timers,
                relay=not args.no_relay, queues=not args.no_queues,
                route_prefix=_route_prefix(Path.cwd() / "host.json"), host_json=Path.cwd() / "host.json"))
            _banner(host)
            log.info("running; Ctrl-C stops the devhost%s", " and Azurite" if storage else "")
            stopping.wait()
            log.info("stopping")
        return 0
    except (SettingsError, FunctionError) as exc:
        log.error("%s", exc)
        return 2
    finally:
        if storage is not None:
            storage.stop()


if __name__ == "__main__":
    sys.exit(main())
