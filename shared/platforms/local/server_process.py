"""Starting, checking and stopping the servers of local deployments: one process per deployment
(`python -m engine.serve.model_server`), or one shared process per base model serving every LoRA adapter
of it (`python -m engine.serve.shared_server`, recorded under `<endpoints>/.pools/`).

Each server runs in its own session, so stopping its process group also stops anything it spawned.
A pid is only trusted while /proc shows it is still that endpoint's server: a recycled pid belongs to some
other program and must never be signalled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from shared.platforms.local.endpoint_files import DeploymentState, EndpointFiles, file_lock, now
from shared.platforms.local.engine_env import child_env

SERVER_MODULE = "engine.serve.model_server"
ROUTER_MODULE = "engine.serve.router"
SHARED_MODULE = "engine.serve.shared_server"
_PROC = Path("/proc")
# Servers this process started, so their exit is reaped and seen at once (a zombie must not look alive).
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def start(files: EndpointFiles, deployment: str, model_uri: str, model_dir: Path) -> DeploymentState:
    """Start the deployment's server on a free 127.0.0.1 port; it loads `model_dir`, then serves."""
    port, pid = _spawn(files, SERVER_MODULE, ["--deployment", deployment, "--model-uri", model_uri,
                                              "--model-dir", str(model_dir)], files.server_log(deployment))
    return DeploymentState(model_uri=model_uri, port=port, pid=pid, created_at=now())


def start_router(files: EndpointFiles, port: int = 0) -> tuple[int, int]:
    """Start the endpoint's router (see router.py) on `port` (0: a free one); its (port, pid).

    OSError if `port` is taken by something else (after a reboot, say)."""
    return _spawn(files, ROUTER_MODULE, [], files.root / "router.log", port)


def pool_id(base_dir: Path) -> str:
    """The shared server's name for a base model folder (one shared server per base)."""
    return hashlib.sha256(str(Path(base_dir).resolve()).encode()).hexdigest()[:16]


def pool_log(endpoints_root: Path, pool: str) -> Path:
    """The shared server's log."""
    return endpoints_root / ".pools" / f"{pool}.log"


@contextlib.contextmanager
def pool_locked(endpoints_root: Path, pool: str) -> Iterator[None]:
    """Hold the shared server's fcntl lock: a deploy choosing it and the server deciding to exit (no
    deployment left) take turns, so a deploy never lands on a server that is on its way out."""
    with file_lock(endpoints_root / ".pools" / f"{pool}.lock"):
        yield


def shared_server(endpoints_root: Path, base_dir: Path) -> tuple[str, int, int]:
    """(pool id, port, pid) of the shared server for `base_dir`, started unless it runs. Call it holding
    `pool_locked` and write the deployment's state before letting go (the server adopts what it finds)."""
    pool = pool_id(base_dir)
    record = endpoints_root / ".pools" / f"{pool}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        known = json.loads(record.read_text())
        if running(int(known["pid"]), EndpointFiles(endpoints_root), SHARED_MODULE):
            return pool, int(known["port"]), int(known["pid"])
    port, pid = _spawn(endpoints_root, SHARED_MODULE, ["--pool", pool, "--base-dir", str(base_dir)],
                       pool_log(endpoints_root, pool), flag="--endpoints-root")
    record.write_text(json.dumps({"pid": pid, "port": port, "base_dir": str(base_dir)}))
    return pool, port, pid


def alive(entry: DeploymentState, files: EndpointFiles) -> bool:
    """Whether the deployment's server runs: its own process, or its base model's shared server."""
    if entry.pool:
        return running(entry.pid, EndpointFiles(files.root.parent), SHARED_MODULE)
    return running(entry.pid, files)


def _spawn(files: EndpointFiles | Path, module: str, arguments: list[str], log_path: Path,
           port: int = 0, flag: str = "--endpoint-dir") -> tuple[int, int]:
    root = files if isinstance(files, Path) else files.root
    # Bind here and hand the socket over: the port recorded is certainly the server's, with no race for it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a router's port again after a restart
        sock.bind(("127.0.0.1", port))
        port = int(sock.getsockname()[1])
        if module == ROUTER_MODULE:
            # A router listens at once: a request that comes before it is up waits in the backlog rather
            # than being refused (an adapter loads on a warm shared server faster than a router starts).
            # A model server does not: until it answers, a health check is refused at once (Creating),
            # never left waiting.
            sock.listen(128)
        command = [sys.executable, "-m", module, flag, str(root), *arguments,
                   "--fd", str(sock.fileno())]
        env = child_env()
        with open(log_path, "wb") as log:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     pass_fds=(sock.fileno(),), start_new_session=True, cwd=root,
                                     env=env)
    finally:
        sock.close()
    _STARTED[child.pid] = child
    return port, child.pid


def running(pid: int | None, files: EndpointFiles, module: str = SERVER_MODULE) -> bool:
    """Whether `pid` is alive and still this endpoint's server (or, with ROUTER_MODULE, its router; with
    SHARED_MODULE and `files` at the endpoints' root, a shared server of theirs)."""
    if pid is None:
        return False
    child = _STARTED.get(pid)
    if child is not None:
        # Our own child's pid cannot be recycled before we reap it, so its exit status is the whole answer.
        if child.poll() is None:
            return True
        _STARTED.pop(pid, None)
        return False
    if not _PROC.is_dir():
        return _exists(pid)  # no /proc (macOS): trust the pid
    try:
        cmdline = (_PROC / str(pid) / "cmdline").read_bytes()
        process_state = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if process_state == "Z":
        return False
    if not cmdline:
        return True  # in the middle of exec: its command line is not set up yet
    return module.encode() in cmdline and str(files.root).encode() in cmdline


def stop(pid: int | None, files: EndpointFiles, grace_s: float = 5.0, module: str = SERVER_MODULE) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it is still there after `grace_s`."""
    if pid is None or not running(pid, files, module):
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not running(pid, files, module):
                return
            time.sleep(0.05)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
