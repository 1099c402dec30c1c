"""The devhost: Core Tools' local routes on 127.0.0.1, plus the blob watcher, timers, job-event relay and
alert tail that stand in for Event Grid, the timer scheduler and the platform's event subscription.

    with DevHost(app, settings, port=0) as host:
        httpx.get(f"{host.base_url}/admin/functions")
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import azure.functions as func

from devhost import triggers
from devhost.alerts import AlertTail
from devhost.polling import Poller
from devhost.queues import QueueOptions, QueueTriggers, blob_trigger_queue
from devhost.relay import JobEventRelay
from devhost.routes import Reply, Routes
from devhost.timers import TimerSchedule
from devhost.triggers import HostedFunction, Invoker
from devhost.watcher import BlobWatcher
from shared.settings import Settings, parse_duration
from shared.wiring import build_alerts

log = logging.getLogger("devhost")


class _Server(ThreadingHTTPServer):
    """A stalled client must not hold stop(): handler threads are daemons, joined for a short grace only
    (the function calls they start are joined by the Invoker), and each connection's reads time out."""

    daemon_threads = True
    block_on_close = False
    close_grace_s = 2.0
    routes: Routes

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._handlers: set[threading.Thread] = set()
        self._handlers_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._handlers_lock:
            self._handlers.add(threading.current_thread())
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._handlers_lock:
                self._handlers.discard(threading.current_thread())

    def server_close(self) -> None:
        super().server_close()
        deadline = time.monotonic() + self.close_grace_s
        with self._handlers_lock:
            running = list(self._handlers)
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30.0  # seconds a client may take to send its request (socket timeout per read)

    def _answer(self) -> None:
        raw_length = (self.headers.get("Content-Length") or "0").strip()
        if not raw_length.isascii() or not raw_length.isdigit():
            self.close_connection = True  # the body's end is unknown, so the connection cannot be reused
            self._send(Reply.text(400, f"Content-Length {raw_length[:40]!r} is not a number of bytes"))
            return
        length = int(raw_length)
        try:
            body = self.rfile.read(length) if length else b""
        except TimeoutError:
            self.close_connection = True
            log.debug("%s sent no body within %ss; dropped", self.address_string(), self.timeout)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.routes.handle(self.command, self.path, headers, body)
        except Exception:  # a bug in the devhost itself, not in a function
            log.exception("devhost failed on %s %s", self.command, self.path)
            reply = Reply.text(500, "devhost error")
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        headers = dict(reply.headers or {})
        if not any(k.lower() == "x-content-type-options" for k in headers):
            headers["X-Content-Type-Options"] = "nosniff"
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting; nothing to do
                log.debug("%s left before its answer was sent", self.address_string())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def function_timeout_of(host_json: Path, env: Mapping[str, str]) -> timedelta | None:
    """host.json's functionTimeout, or the app setting AzureFunctionsJobHost__functionTimeout that overrides
    it on Azure too; None (no limit) if neither is set or it is -1."""
    value = env.get("AzureFunctionsJobHost__functionTimeout")
    if value is None and host_json.exists():
        value = json.loads(host_json.read_text()).get("functionTimeout")
    if value is None or str(value).strip() == "-1":
        return None
    return parse_duration("functionTimeout", str(value))


class DevHost:
    """Runs a FunctionApp's functions on this machine, the way the Functions host would drive them.

    `settings` defaults to `Settings.from_env(env)`, validated at `start()`; `env` (default os.environ)
    holds the app settings that `%NAME%` binding expressions and binding connections resolve against.
    """

    def __init__(self, app: func.FunctionApp, settings: Settings | None = None, *,
                 env: Mapping[str, str] | None = None, port: int = 0, watch_blobs: bool = True,
                 timers: bool = True, relay: bool = True, alerts: bool = True,
                 relay_function: str = "job_events", poll_interval: float = 1.0,
                 route_prefix: str = "api", queues: bool = True,
                 host_json: Path = Path("host.json"), function_timeout: timedelta | None = None) -> None:
        self.app = app
        self.settings = settings
        self.port = port
        self._env = env
        self._options = {"watch_blobs": watch_blobs, "timers": timers, "relay": relay, "alerts": alerts,
                         "queues": queues}
        self.host_json = host_json
        self.relay_function = relay_function
        self.poll_interval = poll_interval
        self.route_prefix = route_prefix
        self.functions: dict[str, HostedFunction] = {}
        self.function_timeout = function_timeout
        self.invoker = Invoker()
        self._server: _Server | None = None
        self._serving: threading.Thread | None = None
        self._pollers: list[Poller] = []

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>` once started."""
        if self._server is None:
            raise RuntimeError("the devhost is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> DevHost:
        """Validate settings and functions, serve the routes, then start the event sources."""
        env = dict(os.environ if self._env is None else self._env)
        settings = self.settings or Settings.from_env(env)
        self.settings = settings
        # Settings has defaults for these; binding expressions fall back to the same values.
        env.setdefault("INCOMING_CONTAINER", settings.incoming_container)
        env.setdefault("IDLE_SWEEP_SCHEDULE", settings.sweep_schedule)
        env.setdefault("STEP_QUEUE", settings.step_queue)
        if settings.storage.connection_string:
            env.setdefault("AUTOPILOT_STORAGE", settings.storage.connection_string)
        self.functions = triggers.read_functions(self.app, env)
        schedule = TimerSchedule([f for f in self.functions.values() if f.trigger_type == triggers.TIMER],
                                 self.invoker)  # parses the schedules now, so a bad one fails at start
        self.queue_options = QueueOptions.from_host_json(self.host_json)
        self.invoker.timeout = self.function_timeout or function_timeout_of(self.host_json, env)
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        blob_queues = {f.name: blob_trigger_queue(f, env) for f in self.functions.values()
                       if f.trigger_type == triggers.BLOB}
        self._server.routes = Routes(self.functions, env, self.invoker, self.route_prefix, blob_queues)
        # serve_forever looks for a shutdown every poll_interval (0.5 s by default): each stop waited so.
        self._serving = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                         name="devhost-http", daemon=True)
        self._serving.start()
        log.info("devhost listening on %s", self.base_url)
        try:
            self._start_sources(settings, env, schedule)
        except Exception:
            self.stop()
            raise
        return self

    def _start_sources(self, settings: Settings, env: Mapping[str, str], schedule: TimerSchedule) -> None:
        blob_functions = [f for f in self.functions.values() if f.trigger_type == triggers.BLOB]
        if self._options["watch_blobs"] and blob_functions:
            self._pollers.append(BlobWatcher(blob_functions, env, self.base_url,
                                             settings.data_dir / "devhost" / "blob-events.json",
                                             interval=self.poll_interval, alerts=build_alerts(settings)))
        if self._options["timers"] and schedule.timers:
            self._pollers.append(schedule)
        queue_functions = [f for f in self.functions.values()
                           if f.trigger_type == triggers.QUEUE and self._options["queues"]]
        # Blob triggers run from the host's blob trigger queue, fed by blob events (watched or posted).
        blob_queued = blob_functions if self._options["queues"] or self._options["watch_blobs"] else []
        if queue_functions or blob_queued:
            self._pollers.append(QueueTriggers(queue_functions, env, self.invoker, self.queue_options,
                                               blob_functions=blob_queued, interval=self.poll_interval))
        relay_target = self.functions.get(self.relay_function)
        if self._options["relay"]:
            if relay_target is None or relay_target.trigger_type != triggers.EVENT_GRID:
                log.warning("job-event relay off: no Event Grid function named %s", self.relay_function)
            else:
                self._pollers.append(JobEventRelay(settings.storage, settings.job_event_queue, self.base_url,
                                                   self.relay_function, interval=self.poll_interval))
        if self._options["alerts"]:
            self._pollers.append(AlertTail(settings.data_dir / "alerts.jsonl", interval=self.poll_interval))
        for poller in self._pollers:
            poller.start()

    def stop(self) -> None:
        """Stop the event sources, then the server; wait for every invocation still running."""
        for poller in reversed(self._pollers):
            poller.stop()
        self._pollers.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._serving is not None:
                self._serving.join()
            self._server = None
        self.invoker.join()

    def __enter__(self) -> DevHost:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
