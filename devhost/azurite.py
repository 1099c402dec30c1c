"""Start and stop Azurite (the storage emulator, installed from npm into node_modules) on loopback ports."""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.azurite import azurite_connection_string

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("devhost.azurite")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _executable() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if not found:
        raise RuntimeError("Azurite is not installed; run `npm ci` in the project root (make setup does)")
    return found


@dataclass
class Azurite:
    """A running Azurite; `connection_string` points at its three services.

    `process` is None for an Azurite found already listening (one this program did not start): it is used
    as it is and left running by `stop()`.
    """

    process: subprocess.Popen[bytes] | None
    blob_port: int
    queue_port: int
    table_port: int
    # Azurite may ignore SIGTERM for a while after serving requests; an in-memory one has nothing to flush.
    stop_grace_s: float = 10.0

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(blob=self.blob_port, queue=self.queue_port, table=self.table_port)

    @property
    def adopted(self) -> bool:
        """Whether this Azurite was already running when we looked (so it is not ours to stop)."""
        return self.process is None

    def stop(self) -> None:
        """Stop Azurite and everything it started (it runs in its own process group); not an adopted one."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(self.stop_grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def start(location: Path, *, blob_port: int = 0, queue_port: int = 0, table_port: int = 0,
          in_memory: bool = False, log: Path | None = None) -> Azurite:
    """Start Azurite on 127.0.0.1 (free ports unless given) and wait until all three services answer.

    When all three given ports already answer as Azurite (say, one left over by a killed `autopilot up`),
    that one is used and the user is told so; any other listener on a given port is an error naming it.
    """
    ports = [p or free_port() for p in (blob_port, queue_port, table_port)]
    taken = [p for p in ports if _listening(p)]
    if taken:
        return _adopt(ports, taken, location)
    location.mkdir(parents=True, exist_ok=True)
    cmd = [_executable(), "--silent", "--skipApiVersionCheck", "--disableProductStyleUrl",
           "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
           "--blobPort", str(ports[0]), "--queuePort", str(ports[1]), "--tablePort", str(ports[2])]
    # Azurite refuses --location together with in-memory persistence.
    cmd += ["--inMemoryPersistence"] if in_memory else ["--location", str(location)]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    azurite = Azurite(proc, ports[0], ports[1], ports[2], stop_grace_s=2.0 if in_memory else 10.0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Azurite exited with status {proc.returncode}; see {log or 'its output'}")
        if all(_listening(p) for p in ports):
            return azurite
        time.sleep(0.2)
    azurite.stop()
    raise RuntimeError("Azurite did not start listening within 60 s")


@contextlib.contextmanager
def running(location: Path, **kwargs: object) -> Iterator[Azurite]:
    """Azurite for the duration of a `with` block."""
    azurite = start(location, **kwargs)  # type: ignore[arg-type]
    try:
        yield azurite
    finally:
        azurite.stop()


def _adopt(ports: list[int], taken: list[int], location: Path) -> Azurite:
    """An Azurite someone else started, if that is what listens on all of `ports`; else a clear error."""
    if taken != ports or _server_header(ports[0]).split("/")[0] != "Azurite-Blob":
        raise RuntimeError(f"port(s) {', '.join(map(str, taken))} on 127.0.0.1 are in use by another "
                           "program; stop it, or choose other Azurite ports")
    log.warning("found an Azurite on 127.0.0.1:%s that this run did not start (left over from an earlier "
                "run?); using it as it is, with whatever data it holds, and leaving it running on exit. Its "
                "data may not be in %s; stop that process to get a fresh one.",
                "/".join(map(str, ports)), location)
    return Azurite(None, ports[0], ports[1], ports[2])


def _server_header(port: int) -> str:
    """The Server header of a plain GET (Azurite's blob service says `Azurite-Blob/<version>`), or ''."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/")
        return conn.getresponse().getheader("Server") or ""
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        conn.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
