"""Stands in for storage's Event Grid subscription: new blobs become BlobCreated events on the blob route.

About once a second it lists each blob trigger's container and POSTs a `Microsoft.Storage.BlobCreated`
event for every blob (name + ETag) it has not delivered yet to
`/runtime/webhooks/blobs?functionName=Host.Functions.NAME`, so the route itself is exercised. Delivered
blobs are remembered in a file under the data dir, so a restart does not fire everything again; a failed
delivery is retried with backoff, and given up (dead-lettered, logged) after a few tries, like Event Grid.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerClient

from devhost.polling import Poller
from devhost.triggers import HostedFunction, blob_path, storage_for
from shared.events import blob_created_event
from shared.storage import blob_service

log = logging.getLogger("devhost.watcher")

MAX_ATTEMPTS = 5


class BlobWatcher(Poller):
    """Turns new blobs in the blob triggers' containers into BlobCreated deliveries."""

    name = "blob watcher"

    def __init__(self, functions: list[HostedFunction], env: Mapping[str, str], base_url: str,
                 state_file: Path, *, interval: float = 1.0, delivery_timeout: float = 300.0) -> None:
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

    def start(self) -> None:
        """Create each watched container if missing, then start polling."""
        for function in self.functions:
            container, _ = blob_path(function)
            service = blob_service(storage_for(str(function.trigger["connection"]), self.env))
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
            for blob in container.list_blobs():
                if self.stopping:
                    return
                etag = str(blob.etag or "").strip('"')
                key = f"{function.name}/{container.container_name}/{blob.name}"
                if not name_pattern.fullmatch(blob.name) or not self._due(key, etag):
                    continue
                event = blob_created_event(container.get_blob_client(blob.name).url,
                                           content_length=int(blob.size or 0), etag=etag)
                self._deliveries.submit(self._deliver, function.name, key, etag, event)

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
