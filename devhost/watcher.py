"""Stands in for storage's Event Grid subscription: new blobs become BlobCreated events on the blob route.

About once a second it lists each blob trigger's container and POSTs a `Microsoft.Storage.BlobCreated`
event for every blob (name + ETag) it has not delivered yet to
`/runtime/webhooks/blobs?functionName=Host.Functions.NAME`, so the route itself is exercised. Delivered
blobs are remembered in a file under the data dir, so a restart does not fire everything again; a failed
delivery is retried with backoff, and given up (dead-lettered, logged) after a few tries, like Event Grid.

One odd blob must not stop the others. Listings go page by page, each call bounded by a timeout and not
retried by the SDK (Azurite answers 500 to a page holding a name with a control character; the SDK's retries
made that ~90 s per poll). When a page fails it is asked for again in smaller pages down to one name; that
name is spelled out by bisection over listing markers (a few hundred calls, once per poll) and stepped
over, with one alert per name, so every listable name, before or after it, is seen in the same poll.
Each blob is handled on its own, so a name the watcher cannot turn into an event is
skipped (logged once) and the next one goes on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobProperties, BlobServiceClient, ContainerClient

from devhost.polling import Poller
from devhost.triggers import HostedFunction, blob_path, storage_for
from shared.alerts import Alert, AlertSink
from shared.events import blob_created_event
from shared.storage import blob_service

log = logging.getLogger("devhost.watcher")

MAX_ATTEMPTS = 5
PAGE_SIZE = 500
# Listing calls fail fast instead of retrying: the next poll is the retry.
CALL_OPTIONS = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 30}
MAX_NAME_LENGTH = 1024  # Azure's limit on a blob name
_LAST_CHAR = 0xD7FF  # markers are sent as UTF-8: the bisection stays below the surrogates


def _not_the_failing_page(record: logging.LogRecord) -> bool:
    # The SDK logs a warning for every page Azurite fails to serialize; the watcher reports each once.
    return "Unexpected return type" not in record.getMessage()


logging.getLogger("azure.storage.blob._shared.response_handlers").addFilter(_not_the_failing_page)


class BlobWatcher(Poller):
    """Turns new blobs in the blob triggers' containers into BlobCreated deliveries."""

    name = "blob watcher"

    def __init__(self, functions: list[HostedFunction], env: Mapping[str, str], base_url: str,
                 state_file: Path, *, interval: float = 1.0, delivery_timeout: float = 300.0,
                 alerts: AlertSink | None = None) -> None:
        super().__init__(interval)
        self.functions = functions
        self.env = env
        self.base_url = base_url
        self.state_file = state_file
        self.delivery_timeout = delivery_timeout
        self._delivered: dict[str, str] = self._load()
        self._in_flight: set[str] = set()
        self._retry: dict[str, tuple[int, float]] = {}  # key -> (failed attempts, next try at)
        self._lock = threading.Lock()
        self._containers: list[tuple[HostedFunction, ContainerClient]] = []
        self._services: list[BlobServiceClient] = []
        self._deliveries = ThreadPoolExecutor(max_workers=4, thread_name_prefix="devhost-blob-event")
        self.alerts = alerts
        self._reported: set[str] = set()  # skipped names and unlistable prefixes already told about

    def start(self) -> None:
        """Create each watched container if missing, then start polling."""
        for function in self.functions:
            container, _ = blob_path(function)
            service = blob_service(storage_for(str(function.trigger["connection"]), self.env), **CALL_OPTIONS)
            self._services.append(service)
            client = service.get_container_client(container)
            try:
                client.create_container()
                log.info("created container %s for %s", container, function.name)
            except ResourceExistsError:
                pass
            self._containers.append((function, client))
        super().start()

    def poll(self) -> None:
        """List the containers once; queue a delivery for each blob not delivered yet."""
        for function, container in self._containers:
            _, name_pattern = blob_path(function)
            for blob in self._listing(container):
                if self.stopping:
                    return
                try:
                    self._offer(function, container, name_pattern, blob)
                except Exception as exc:  # one blob the watcher cannot handle must not stop the others
                    self._report(f"{container.container_name}/{blob.name!r}", "devhost.blob_skipped",
                                 f"blob {blob.name!r} in {container.container_name} is skipped: "
                                 f"{type(exc).__name__}: {exc}")

    def _offer(self, function: HostedFunction, container: ContainerClient, name_pattern: re.Pattern[str],
               blob: BlobProperties) -> None:
        etag = str(blob.etag or "").strip('"')
        key = f"{function.name}/{container.container_name}/{blob.name}"
        if not name_pattern.fullmatch(blob.name) or not self._due(key, etag):
            return
        try:
            event = blob_created_event(container.get_blob_client(blob.name).url,
                                       content_length=int(blob.size or 0), etag=etag)
        except Exception:
            with self._lock:
                self._in_flight.discard(key)
            raise
        self._deliveries.submit(self._deliver, function.name, key, etag, event)

    def _listing(self, container: ContainerClient) -> Iterator[BlobProperties]:
        """Every blob of the container that can be listed; a name that cannot is reported once."""
        def unlistable(name: str, cause: str) -> None:
            self._report(f"{container.container_name}/{name}", "devhost.blobs_unlistable",
                         f"a blob in {container.container_name} named {name} cannot be listed ({cause}); "
                         "it is skipped and other uploads go on. Delete or rename it (a control character in "
                         "its name?) to clear this.")

        yield from _list(container, unlistable, _Budget())

    def _report(self, key: str, alert_class: str, message: str) -> None:
        """Log (and alert) a skipped name or prefix once per devhost run."""
        if key in self._reported:
            return
        self._reported.add(key)
        log.error("%s", message)
        if self.alerts is not None:
            try:
                self.alerts.send(Alert(f"devhost:{key}", alert_class, "error", message))
            except Exception as exc:  # the alert is best effort; the log line above stays
                log.warning("could not send the alert: %s", exc)

    def close(self) -> None:
        self._deliveries.shutdown(wait=True, cancel_futures=True)
        for service in self._services:
            service.close()  # idle keep-alive connections would hold up Azurite's shutdown

    def _due(self, key: str, etag: str) -> bool:
        with self._lock:
            if self._delivered.get(key) == etag or key in self._in_flight:
                return False
            _, next_try = self._retry.get(key, (0, 0.0))
            if time.monotonic() < next_try:
                return False
            self._in_flight.add(key)
            return True

    def _deliver(self, function: str, key: str, etag: str, event: dict[str, object]) -> None:
        url = f"{self.base_url}/runtime/webhooks/blobs?functionName=Host.Functions.{function}"
        try:
            response = httpx.post(url, json=[event], headers={"aeg-event-type": "Notification"},
                                  timeout=self.delivery_timeout)
            ok, why = response.is_success, f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._in_flight.discard(key)
            if ok:
                self._retry.pop(key, None)
                self._record(key, etag)
                return
            attempts = self._retry.get(key, (0, 0.0))[0] + 1
            if attempts >= MAX_ATTEMPTS:
                log.error("BlobCreated for %s dead-lettered after %d failed deliveries (last: %s)",
                          key, attempts, why)
                self._retry.pop(key, None)
                self._record(key, etag)
                return
            delay = min(2.0 ** attempts, 60.0)
            self._retry[key] = (attempts, time.monotonic() + delay)
            log.warning("BlobCreated for %s failed (%s); retry %d in %.0fs", key, why, attempts, delay)

    def _record(self, key: str, etag: str) -> None:
        """Remember a delivered blob (under the lock); written atomically so a crash never truncates it."""
        self._delivered[key] = etag
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_suffix(".tmp")
        partial.write_text(json.dumps(self._delivered, indent=0, sort_keys=True))
        os.replace(partial, self.state_file)

    def _load(self) -> dict[str, str]:
        try:
            loaded = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            log.warning("%s is not JSON; starting with no delivered blobs", self.state_file)
            return {}
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


class _Budget:
    """Listing calls one poll may make: a storage that fails every call must not be probed forever."""

    def __init__(self, calls: int = 3000) -> None:
        self.left = calls

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("listing keeps failing; is the storage healthy?")


def _list(container: ContainerClient, unlistable: Callable[[str, str], None],
          budget: _Budget) -> Iterator[BlobProperties]:
    """Every listable blob of the container, in name order, page by page from a marker (the last name seen;
    Azurite lists the names after it). A page that fails is asked for again, smaller, until one name is
    left: that name is the odd one, found by `_odd_name` and stepped over, so names after it are listed in
    the same poll. A call that gets no answer at all (storage down) raises, failing the whole poll."""
    after, size = "", PAGE_SIZE
    while True:
        try:
            page, more = _page(container, after, size, budget)
        except HttpResponseError as exc:
            if size > 1:
                size = max(1, size // 8)
                continue
            cause = f"HTTP {exc.status_code}" if exc.status_code else type(exc).__name__
            odd = _odd_name(container, after, budget)
            if odd is None:  # the one-name page listed this time: a passing failure, not a name
                continue
            unlistable(odd[0], cause)
            after, size = odd[1], PAGE_SIZE
            continue
        yield from page
        if not more or not page:
            return
        after = str(page[-1].name)


def _page(container: ContainerClient, after: str, size: int,
          budget: _Budget) -> tuple[list[BlobProperties], bool]:
    """One listing call: up to `size` blobs named after `after`, and whether more follow."""
    budget.spend()
    pages = container.list_blobs(results_per_page=size, timeout=30).by_page(continuation_token=after or None)
    try:
        page = list(next(pages))
    except StopIteration:
        return [], False
    return page, getattr(pages, "continuation_token", None) is not None  # set once the page is read


def _odd_name(container: ContainerClient, after: str, budget: _Budget) -> tuple[str, str] | None:
    """The first name after `after`, which no listing returns: (how to show it, the marker that steps over
    it); None if a one-name page from `after` lists after all."""
    found = _spelled(container, after, budget)
    if found is None:
        return None
    start, cut = found
    return (f"{start!r} followed by a control character", start + " ") if cut else (repr(start), start)


def _spelled(container: ContainerClient, after: str, budget: _Budget) -> tuple[str, bool] | None:
    """The odd name after `after`, spelled out by bisection over markers: a one-name page from marker M
    fails while M sorts before it. About eight calls a character. A marker cannot carry a control
    character, so a name is spelled up to one: (the name or its start, whether it was cut there). A second
    odd name with no listable name before it can mislead the bisection past the first (see the README)."""
    def before_odd(marker: str) -> bool:
        try:
            _page(container, max(marker, after), 1, budget)
        except HttpResponseError:
            return True
        return False

    if not before_odd(after):
        return None
    name = ""
    while len(name) < MAX_NAME_LENGTH:
        # The smallest character c with `name + c` not before the odd name: its next character, if the name
        # ends there, else the one after it.
        low, high = (0x80, _LAST_CHAR + 1) if before_odd(name + "\x7f") else (0x20, 0x7F)
        while low < high:
            middle = (low + high) // 2
            low, high = (middle + 1, high) if before_odd(name + chr(middle)) else (low, middle)
        if low == 0x20:
            return name, True
        if not before_odd(name + chr(low - 1) + chr(_LAST_CHAR)):
            name += chr(low - 1)  # the name goes on past this character
        else:
            return name + chr(low), False
    raise RuntimeError("listing keeps failing; is the storage healthy?")
