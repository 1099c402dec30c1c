"""The registered functions as the host sees them: their trigger bindings, and how to invoke each one.

Everything comes from the app's own metadata (`app.get_functions()`, each binding's `get_dict_repr()`), so the
devhost drives exactly the functions that `function_app.py` registers, with the argument types the Python
worker would hand them.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import threading
import time
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.decorators.function_app import Function
from azure.functions.decorators.utils import StringifyEnumJsonEncoder
from azure.functions.eventgrid import EventGridEventInConverter
from azure.storage.blob import BlobClient

from shared.settings import StorageSettings, azurite_connection_string
from shared.storage import blob_service, split_blob_url

log = logging.getLogger("devhost")

BLOB = "blobTrigger"
EVENT_GRID = "eventGridTrigger"
TIMER = "timerTrigger"
HTTP = "httpTrigger"
SUPPORTED = (BLOB, EVENT_GRID, TIMER, HTTP)


class FunctionError(ValueError):
    """A registered function cannot be hosted here (unknown setting, unsupported binding); names which."""


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


def index(app: func.FunctionApp) -> list[Function]:
    """`app.get_functions()`, callable more than once (a restarted DevHost, tests reading the bindings)."""
    # get_functions() records the names it has seen and takes them as duplicates on a second call.
    app.functions_bindings = None
    return app.get_functions()


def read_functions(app: func.FunctionApp, env: Mapping[str, str]) -> dict[str, HostedFunction]:
    """The app's functions by name; raise FunctionError for anything this host cannot drive faithfully."""
    hosted: dict[str, HostedFunction] = {}
    for function in index(app):
        name = str(function.get_function_name())
        raw = tuple(json.loads(json.dumps(b.get_dict_repr(), cls=StringifyEnumJsonEncoder))
                    for b in function.get_bindings())
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


def storage_for(connection: str, env: Mapping[str, str]) -> StorageSettings:
    """The storage a binding's `connection` names: a connection string or `<name>__blobServiceUri`."""
    value = env.get(connection, "").strip()
    if value == "UseDevelopmentStorage=true":
        return StorageSettings(connection_string=azurite_connection_string())
    if value:
        return StorageSettings(connection_string=value)
    uri = env.get(f"{connection}__blobServiceUri") or env.get(f"{connection}__serviceUri")
    if uri:
        return StorageSettings(connection_string=None, blob_url=uri)
    raise FunctionError(f"connection {connection}: app setting {connection} "
                        f"(or {connection}__blobServiceUri) is not set")


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
        return func.blob.InputStream(data=data, name=f"{container}/{name}", uri=client.url, length=len(data))
    return client


def event_grid_argument(body: Mapping[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """The Event Grid trigger's argument, converted by the worker library's own converter."""
    datum = meta.Datum(json.dumps(body), "json")
    event: func.EventGridEvent | func.CloudEvent = EventGridEventInConverter.decode(
        datum, trigger_metadata={})
    return event


def timer_argument(*, past_due: bool = False) -> func.TimerRequest:
    """The timer trigger's argument."""
    return func.timer.TimerRequest(past_due=past_due)


class Invoker:
    """Runs functions with Core Tools-style console lines; background invocations are joined on `join()`."""

    def __init__(self) -> None:
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def invoke(self, function: HostedFunction, argument: Any, *, reason: str) -> Any:
        """Call the function with its trigger argument; its exception propagates (after being logged)."""
        invocation = str(uuid.uuid4())
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", function.name, reason, invocation)
        started = time.perf_counter()
        try:
            result = function.user_function(**{function.arg_name: argument})
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
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
