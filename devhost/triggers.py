"""The registered functions as the host sees them: their trigger bindings, and how to invoke each one.

Everything comes from the library's public API: `app.get_functions()`, each function's `get_user_function()`
and its bindings' `get_dict_repr()` (what the host reads), so the devhost drives exactly the functions that
`function_app.py` registers, with trigger arguments built by the library's public constructors.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import re
import threading
import time
import typing
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import azure.functions as func
from azure.functions.blob import InputStream
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobClient

from shared.azurite import connection_string
from shared.events import parse_event_time
from shared.settings import StorageSettings
from shared.storage import blob_service, split_blob_url

log = logging.getLogger("devhost")

BLOB = "blobTrigger"
EVENT_GRID = "eventGridTrigger"
TIMER = "timerTrigger"
HTTP = "httpTrigger"
QUEUE = "queueTrigger"
SUPPORTED = (BLOB, EVENT_GRID, TIMER, HTTP, QUEUE)


T = TypeVar("T")


class FunctionError(ValueError):
    """A registered function cannot be hosted here (unknown setting, unsupported binding); names which."""


class FunctionTimeout(Exception):
    """An invocation ran past functionTimeout: the host fails it there and restarts the worker that ran it."""


def within(call: Callable[[], T], timeout: timedelta | None, name: str) -> T:
    """`call()`, or FunctionTimeout once `timeout` has passed. The Functions host fails a timed-out
    invocation at once (its trigger settles it as any failure: a queue message is released or poisoned) and
    restarts the worker process, so none of the function's own cleanup runs. Here the call runs on a daemon
    thread that is abandoned at the timeout: its result and exception are dropped, and the function the
    devhost drives is not told (Python cannot kill a thread; a child process would cut the app off from the
    state the tests share with it)."""
    if timeout is None:
        return call()
    outcome: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            outcome["result"] = context.run(call)
        except BaseException as exc:  # handed to the caller below, whatever it is
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=f"devhost-invocation-{name}", daemon=True).start()
    if not done.wait(timeout.total_seconds()):
        raise FunctionTimeout(f"Timeout value of {_clock(timeout)} was exceeded by function: "
                              f"Functions.{name}")
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result


def _clock(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def resolve(expression: str, env: Mapping[str, str], *, where: str) -> str:
    """Replace each `%SETTING%` in `expression` by its app setting, as the host does for binding values."""
    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise FunctionError(f"{where}: app setting {name} is not set (used as %{name}%)")
        return env[name]

    return re.sub(r"%([^%]+)%", setting, expression)


@dataclass(frozen=True)
class HostedFunction:
    """One registered function: its trigger binding (with %settings% resolved) and the callable to run."""

    name: str
    trigger: Mapping[str, Any]
    bindings: tuple[Mapping[str, Any], ...]
    user_function: Callable[..., Any]

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])

    @property
    def arg_name(self) -> str:
        return str(self.trigger["name"])

    @property
    def arg_type(self) -> Any:
        """The trigger parameter's annotation (resolved even under `from __future__ import annotations`)."""
        try:
            hints = typing.get_type_hints(self.user_function)
        except Exception:  # unresolvable forward references: fall back to the raw annotation
            hints = {}
        return hints.get(self.arg_name, inspect.signature(self.user_function).parameters[self.arg_name]
                         .annotation)

    def metadata(self) -> dict[str, Any]:
        """What `GET /admin/functions` shows for this function (the fields Core Tools' listing has)."""
        return {"name": self.name, "language": "python", "isDisabled": False, "trigger": self.trigger_type,
                "config": {"bindings": [dict(b) for b in self.bindings]}}


# get_functions() remembers the names it has indexed and refuses them as duplicates on a second call, so
# each app is indexed once and its functions reused (a restarted DevHost, tests reading the bindings).
_INDEXED: weakref.WeakKeyDictionary[func.FunctionApp, list[func.Function]] = weakref.WeakKeyDictionary()
_INDEX_LOCK = threading.Lock()


def index(app: func.FunctionApp) -> list[func.Function]:
    """`app.get_functions()`, indexed once per app."""
    with _INDEX_LOCK:
        if app not in _INDEXED:
            _INDEXED[app] = app.get_functions()
        return _INDEXED[app]


def description(binding: Any) -> dict[str, Any]:
    """A binding as the host reads it (`get_dict_repr()`), with the library's enums as their strings."""
    return dict(json.loads(json.dumps(binding.get_dict_repr(), default=str)))


def read_functions(app: func.FunctionApp, env: Mapping[str, str]) -> dict[str, HostedFunction]:
    """The app's functions by name; raise FunctionError for anything this host cannot drive faithfully."""
    hosted: dict[str, HostedFunction] = {}
    for function in index(app):
        name = str(function.get_function_name())
        raw = tuple(description(b) for b in function.get_bindings())
        triggers = [b for b in raw if str(b.get("type", "")).endswith("Trigger")]
        if len(triggers) != 1 or triggers[0]["type"] not in SUPPORTED:
            raise FunctionError(f"function {name}: trigger {[b.get('type') for b in triggers]} is not one "
                                f"the devhost drives ({', '.join(SUPPORTED)})")
        trigger = {k: resolve(v, env, where=f"function {name}") if isinstance(v, str) else v
                   for k, v in triggers[0].items()}
        user_function = function.get_user_function()
        extra = [p for p in inspect.signature(user_function).parameters if p != trigger["name"]]
        if extra:
            raise FunctionError(f"function {name}: parameters {extra} need bindings the devhost does not "
                                f"provide; only the trigger argument {trigger['name']!r} is passed")
        hosted[name] = HostedFunction(name, trigger, raw, user_function)
    return hosted


def storage_for(connection: str, env: Mapping[str, str], service: str = "blob") -> StorageSettings:
    """The storage a binding's `connection` names: a connection string or `<name>__<service>ServiceUri`."""
    value = env.get(connection, "").strip()
    if value:
        return StorageSettings(connection_string=connection_string(value))
    uri = env.get(f"{connection}__{service}ServiceUri") or env.get(f"{connection}__serviceUri")
    if uri:
        return StorageSettings(connection_string=None, **{f"{service}_url": uri})
    raise FunctionError(f"connection {connection}: app setting {connection} "
                        f"(or {connection}__{service}ServiceUri) is not set")


def blob_path(function: HostedFunction) -> tuple[str, re.Pattern[str]]:
    """(container, pattern for the blob name) of a blob trigger's `path`, e.g. 'incoming/{name}'."""
    container, _, name_template = str(function.trigger["path"]).partition("/")
    pattern = "".join(f"(?P<{part[1:-1]}>.+)" if part.startswith("{") else re.escape(part)
                      for part in re.split(r"(\{[^}]+\})", name_template or "{name}"))
    return container, re.compile(f"^{pattern}$")


def blob_argument(function: HostedFunction, url: str, env: Mapping[str, str]) -> Any:
    """The blob trigger's argument for the blob at `url`: an SDK `BlobClient` (the SDK-type binding)."""
    container, name = split_blob_url(url)
    client: BlobClient = blob_service(storage_for(str(function.trigger["connection"]), env)) \
        .get_blob_client(container, name)
    wanted = function.arg_type
    if isinstance(wanted, type) and issubclass(wanted, func.InputStream):
        data = client.download_blob().readall()
        return InputStream(data=data, name=f"{container}/{name}", uri=client.url, length=len(data))
    return client


def event_grid_argument(body: Mapping[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """The Event Grid trigger's argument: a CloudEvent for a CloudEvents 1.0 body, else an EventGridEvent."""
    if "specversion" in body:
        known = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema",
                 "data"}
        return func.CloudEvent(
            id=str(body.get("id", "")), source=str(body.get("source", "")), type=str(body.get("type", "")),
            specversion=str(body["specversion"]), data=body.get("data"),
            time=parse_event_time(body.get("time")),
            subject=body.get("subject"), datacontenttype=body.get("datacontenttype"),
            dataschema=body.get("dataschema"), **{k: v for k, v in body.items() if k not in known})
    data = body.get("data")
    return func.EventGridEvent(
        id=str(body.get("id", "")), data=data if isinstance(data, dict) else {},
        topic=str(body.get("topic", "")),
        subject=str(body.get("subject", "")), event_type=str(body.get("eventType", "")),
        event_time=parse_event_time(body.get("eventTime")), data_version=str(body.get("dataVersion", "")))


def timer_argument(*, past_due: bool = False) -> func.TimerRequest:
    """The timer trigger's argument."""
    return TimerRequest(past_due=past_due)


class Invoker:
    """Runs functions with Core Tools-style console lines; background invocations are joined on `join()`.
    With a `timeout` (host.json's functionTimeout), an invocation still running then is failed and
    abandoned (`within`)."""

    def __init__(self, timeout: timedelta | None = None) -> None:
        self.timeout = timeout
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def invoke(self, function: HostedFunction, argument: Any, *, reason: str) -> Any:
        """Call the function with its trigger argument; its exception propagates (after being logged)."""
        invocation = str(uuid.uuid4())
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", function.name, reason, invocation)
        started = time.perf_counter()

        def call() -> Any:
            result = function.user_function(**{function.arg_name: argument})
            return asyncio.run(result) if inspect.iscoroutine(result) else result

        try:
            result = within(call, self.timeout, function.name)
        except FunctionTimeout:
            log.error("Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). Initiating "
                      "cancellation.", _clock(self.timeout or timedelta(0)), function.name, invocation)
            log.error("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", function.name, invocation,
                      (time.perf_counter() - started) * 1000)
            raise
        except Exception:
            log.exception("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", function.name,
                          invocation, (time.perf_counter() - started) * 1000)
            raise
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", function.name, invocation,
                 (time.perf_counter() - started) * 1000)
        return result

    def invoke_in_background(self, function: HostedFunction, argument: Any, *, reason: str) -> None:
        """Start the invocation on its own thread (the admin route answers 202 before it finishes)."""
        def run() -> None:
            try:
                self.invoke(function, argument, reason=reason)
            except Exception:  # already logged by invoke; a background run has no caller to tell
                pass
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"devhost-{function.name}")
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for background invocations still running."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
