"""Stands in for storage's Event Grid subscription: new blobs become BlobCreated events on the blob route.

About once a second it lists each blob trigger's container and POSTs a `Microsoft.Storage.BlobCreated`
event for every blob (name + ETag) it has not delivered yet to
`/runtime/webhooks/blobs?functionName=Host.Functions.NAME`, so the route itself is exercised. Delivered
blobs are remembered in a file under the data dir, so a restart does not fire everything again; a failed
delivery is retried with backoff, and given up (dead-lettered, logged) after a few tries, like Event Grid.

One odd blob must not stop the others. Listings go page by page, each call bounded by a timeout and not
retried by the SDK (Azurite answers 500 to a page holding a name with a control character; the SDK's retries
made that ~90 s per poll). When a page fails, the rest of the container is listed by name prefixes,
narrowing only under the prefix that fails; names that no listing can return are skipped, with one alert
per failing prefix. Each blob is handled on its own, so a name the watcher cannot turn into an event is
skipped (logged once) and the next one goes on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
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
# Prefix listing narrows one character at a time over these; a name whose next character is outside them,
# under a prefix whose listing fails, is skipped (it is almost surely the odd name itself).
PREFIX_ALPHABET = "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(chr(c) for c in range(0xA0, 0x180))
MAX_PREFIX_DEPTH = 32


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
        """Every blob of the container that can be listed; names that cannot are reported once per prefix."""
        def unlistable(prefix: str, cause: str) -> None:
            self._report(f"{container.container_name}/{prefix!r}", "devhost.blobs_unlistable",
                         f"a blob in {container.container_name} whose name starts with {prefix!r} cannot be "
                         f"listed ({cause}); it is skipped and other uploads go on. Delete or rename it (a "
                         "control character in its name?) to clear this.")

        yield from _list(container, "", "", 0, unlistable, _Budget())

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
            raise RuntimeError("listing keeps failing under every prefix; is the storage healthy?")


def _list(container: ContainerClient, prefix: str, after: str, depth: int,
          unlistable: Callable[[str, str], None], budget: _Budget) -> Generator[BlobProperties, None, bool]:
    """Blobs whose names start with `prefix` and sort after `after`, page by page. When the storage answers
    a page with an error, the rest is listed under longer prefixes (`_around`). Returns whether some names
    were skipped; a call that gets no answer at all (storage down) raises, failing the whole poll."""
    pages = container.list_blobs(name_starts_with=prefix or None, results_per_page=PAGE_SIZE,
                                 timeout=30).by_page(continuation_token=after or None)
    last = after
    while True:
        budget.spend()
        try:
            page = list(next(pages))
        except StopIteration:
            return False
        except HttpResponseError as exc:
            cause = f"HTTP {exc.status_code}" if exc.status_code else type(exc).__name__
            if depth >= MAX_PREFIX_DEPTH:
                unlistable(prefix, cause)
                return True
            return (yield from _around(container, prefix, last, depth, cause, unlistable, budget))
        for blob in page:
            last = blob.name
            yield blob


def _around(container: ContainerClient, prefix: str, after: str, depth: int, cause: str,
            unlistable: Callable[[str, str], None], budget: _Budget) -> Generator[BlobProperties, None, bool]:
    """The names under `prefix` that sort after `after`, listed under each one-character-longer prefix."""
    deeper = False
    for char in PREFIX_ALPHABET:
        narrower = prefix + char
        if after and narrower < after[: len(narrower)]:
            continue  # every name under it sorts before `after`: listed already
        resume = after if after.startswith(narrower) else ""
        deeper |= yield from _list(container, narrower, resume, depth + 1, unlistable, budget)
    if not deeper:
        # No longer prefix failed, so the failing name continues `prefix` with a character outside
        # PREFIX_ALPHABET (a control character): that is the name skipped. Reported at the deepest level only.
        unlistable(prefix, cause)
    return True
