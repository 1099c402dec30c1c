"""What a local endpoint is on disk: its folder, its state file, its key, its request log, its lock.

`<data_dir>/endpoints/<name>/` holds `state.json` (tags, creation time, traffic split, deployments), `key`
(0600, never passed on a command line), `requests.log` (one UTC timestamp per scored request, appended by the
servers) and one log per deployment's server. Both the platform side (endpoints.py) and the servers
(engine/serve/model_server.py) read it through this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shared.platforms.port import check_name


@dataclass
class DeploymentState:
    model_uri: str
    port: int
    pid: int | None  # None once stopped or failed; deploying it again starts it again
    created_at: str
    # A LoRA fine-tune served by its base model's shared server (engine.serve.shared_server): the adapter's
    # folder, the server's pool id, and the path prefix its routes have there. Unset: a process of its own.
    adapter: str | None = None
    pool: str | None = None
    prefix: str = ""


@dataclass
class EndpointState:
    tags: dict[str, str]
    created_at: str
    traffic: dict[str, int] = field(default_factory=dict)
    deployments: dict[str, DeploymentState] = field(default_factory=dict)
    # The endpoint's router (router.py): its port is the endpoint's stable URL; pid None while stopped.
    router_port: int = 0
    router_pid: int | None = None


@dataclass(frozen=True)
class EndpointFiles:
    """Where one endpoint's state, key, request log and server logs live."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def key(self) -> Path:
        return self.root / "key"

    @property
    def requests(self) -> Path:
        return self.root / "requests.log"

    def server_log(self, deployment: str) -> Path:
        return self.root / f"{deployment}.log"


def now() -> str:
    """The current time as the state file records it (ISO 8601, UTC)."""
    return datetime.now(UTC).isoformat()


def read_state(files: EndpointFiles) -> EndpointState | None:
    """The endpoint's state, or None if it has none (never created, or deleted)."""
    try:
        raw = json.loads(files.state.read_text())
    except FileNotFoundError:
        return None
    deployments = {name: DeploymentState(**entry) for name, entry in raw.pop("deployments").items()}
    return EndpointState(**raw, deployments=deployments)


def write_state(files: EndpointFiles, state: EndpointState) -> None:
    """Replace the state file in one step: servers read it without the lock and must never see half of it."""
    staging = files.state.with_suffix(".tmp")
    staging.write_text(json.dumps(asdict(state), indent=2))
    os.replace(staging, files.state)


@contextlib.contextmanager
def locked(endpoints_root: Path, endpoint: str) -> Iterator[None]:
    """Hold the endpoint's exclusive fcntl lock, shared by every process using this data dir."""
    # The lock lives outside the endpoint's folder, which delete_endpoint removes while holding it.
    with file_lock(endpoints_root / ".locks" / f"{check_name('endpoint', endpoint)}.lock"):
        yield


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold `path`'s exclusive fcntl lock (made with its folder if missing), shared by every process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
