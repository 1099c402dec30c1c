"""A background loop that polls something about once per interval until stopped (watcher, relay, alerts)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("devhost")


class Poller:
    """Calls `poll()` every `interval` seconds on its own thread; `stop()` ends and joins it.

    A failing poll (say, Azurite restarting) is logged once per distinct error rather than every second.
    """

    name = "poller"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None

    def poll(self) -> None:
        """One round of work; subclasses override."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the poller holds after its thread ended; subclasses override."""

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        """Start polling on a thread of its own."""
        self._thread = threading.Thread(target=self._run, name=f"devhost-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling, wait for the thread, then `close()`."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll()
            except Exception as exc:
                if str(exc) != self._last_error:
                    log.warning("%s: %s: %s (retrying every %ss)", self.name, type(exc).__name__, exc,
                                self.interval)
                    self._last_error = str(exc)
            else:
                if self._last_error is not None:
                    log.info("%s: recovered", self.name)
                    self._last_error = None
            self._stopping.wait(self.interval)
