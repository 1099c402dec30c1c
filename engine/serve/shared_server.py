"""One process per base model serving every local deployment that is a LoRA adapter of it.

`LocalEndpoints` starts this (`python -m engine.serve.shared_server ...`) once per base model folder
and records a deployment of an adapter as served by it, with a path prefix `/d/<endpoint>/<deployment>`.
The base weights are loaded once; each deployment's adapter is loaded beside them (PEFT, unmerged) and the
adapter is chosen per request, under one lock. Under its prefix a deployment has the routes of model_server.py
(its endpoint's key, /health, /score, /v1/chat/completions, its endpoint's request log).

The server follows the endpoints' state files: it loads the adapters of the deployments that name it (its
pid), swaps one whose model changed (blue/green within one endpoint is then a swap of adapters, not a second
process), unloads those that left, and exits once none has named it for IDLE_EXIT_S.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse

from engine import cpu
from engine.chat_model import ChatModel, placement
from engine.serve.model_server import build_app
from shared.platforms.local import server_process
from shared.platforms.local.endpoint_files import DeploymentState, EndpointFiles, read_state

log = logging.getLogger("autopilot.shared_server")

WATCH_INTERVAL_S = 0.5
IDLE_EXIT_S = 10.0


@dataclass
class Served:
    adapter_dir: str
    model_uri: str
    created_at: str  # the deployment's incarnation: one deleted and created again gets its new key
    name: str  # the adapter's name in the PeftModel
    app: Any


class AdapterPool:
    """The base model, the adapters loaded beside it, and each deployment's app over its adapter."""

    def __init__(self, base: Any, endpoints_root: Path) -> None:
        self._base = base
        self._root = endpoints_root
        self._peft: Any = None
        self._lock = threading.Lock()  # one generation (or adapter change) at a time
        self._served: dict[tuple[str, str], Served] = {}
        self._unused: set[str] = set()  # adapters kept only because PEFT needs one loaded
        # Deployments whose adapter could not be loaded: the incarnation tried (marker), and why.
        self._failed: dict[tuple[str, str], tuple[str, str, str]] = {}

    def served(self, endpoint: str, deployment: str) -> Served | None:
        return self._served.get((endpoint, deployment))

    def failure(self, endpoint: str, deployment: str) -> tuple[str, str] | None:
        """(created_at, why) of the deployment's incarnation whose adapter could not be loaded, or None."""
        failed = self._failed.get((endpoint, deployment))
        return (failed[1], failed[2]) if failed else None

    def wanted(self) -> dict[tuple[str, str], DeploymentState]:
        """The deployments whose state names this process as their server."""
        found: dict[tuple[str, str], DeploymentState] = {}
        for state_file in self._root.glob("*/state.json"):
            try:
                state = read_state(EndpointFiles(state_file.parent))
            except (OSError, ValueError, TypeError):
                continue  # deleted or being replaced while read: the next pass sees it
            for name, entry in (state.deployments.items() if state else ()):
                if entry.pid == os.getpid() and entry.adapter:
                    found[(state_file.parent.name, name)] = entry
        return found

    def sync(self) -> bool:
        """Load, swap and unload adapters to match the state files; whether any deployment names us."""
        wanted = self.wanted()
        for key, entry in wanted.items():
            current = self._served.get(key)
            marker = f"{entry.adapter}|{entry.model_uri}|{entry.created_at}"
            if current and f"{current.adapter_dir}|{current.model_uri}|{current.created_at}" == marker:
                continue
            if key in self._failed and self._failed[key][0] == marker:
                continue  # logged and reported once; a new model for the deployment is tried again
            try:
                self._load(key, entry)
                self._failed.pop(key, None)
            except Exception as exc:
                log.exception("could not load the adapter of %s/%s (%s)", *key, entry.model_uri)
                # Reported on the deployment's /health, so the platform says Failed (and why) at once
                # instead of Creating until its deploy timeout.
                why = f"its adapter could not be loaded: {type(exc).__name__}: {str(exc)[:300]}"
                self._failed[key] = (marker, entry.created_at, why)
        for key in set(self._served) - set(wanted):
            log.info("deployment %s/%s left; unloading its adapter", *key)
            self._drop(self._served.pop(key).name)
        for key in set(self._failed) - set(wanted):
            del self._failed[key]
        return bool(wanted)

    def _load(self, key: tuple[str, str], entry: DeploymentState) -> None:
        from peft import PeftModel
        from transformers import AutoTokenizer

        assert entry.adapter is not None
        started = time.monotonic()
        # Named by the deployment's incarnation too: a deployment deleted and created again between two
        # passes (same adapter, same model) must not get the old one's name, or dropping the old adapter
        # below would unload the new one.
        incarnation = f"{key}|{entry.adapter}|{entry.model_uri}|{entry.created_at}"
        name = "a" + hashlib.sha256(incarnation.encode()).hexdigest()[:16]
        tokenizer = AutoTokenizer.from_pretrained(entry.adapter)
        with self._lock:
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(self._base, entry.adapter, adapter_name=name)
            else:
                self._peft.load_adapter(entry.adapter, adapter_name=name)
            self._peft.eval()
        chat = ChatModel(self._peft, tokenizer, entry.model_uri, adapter=name, lock=self._lock)
        # One token first, as model_server.py does: an adapter that cannot answer never reports ready.
        chat.complete([{"role": "user", "content": "ready?"}], max_new_tokens=1)
        files = EndpointFiles(self._root / key[0])
        app = build_app(chat, files.key.read_text().strip(), files, key[1])
        old = self._served.get(key)
        self._served[key] = Served(entry.adapter, entry.model_uri, entry.created_at, name, app)
        if old and old.name != name:
            self._drop(old.name)
        for unused in list(self._unused):
            self._drop(unused)
        log.info("adapter of %s/%s (%s) loaded in %.1f s", *key, entry.model_uri, time.monotonic() - started)

    def _drop(self, name: str) -> None:
        """Unload an adapter; PEFT keeps at least one, so the last one stays until another is loaded."""
        with self._lock:
            if self._peft is None or name not in self._peft.peft_config:
                return
            if len(self._peft.peft_config) > 1:
                self._peft.delete_adapter(name)
                self._unused.discard(name)
            else:
                self._unused.add(name)

    def watch(self, pool: str) -> None:
        """Follow the state files; exit once no deployment has named this server for IDLE_EXIT_S."""
        idle_since = time.monotonic()
        while True:
            time.sleep(WATCH_INTERVAL_S)
            try:
                busy = self.sync()
            except Exception:
                log.exception("could not follow the endpoints' state")
                continue
            if busy:
                idle_since = time.monotonic()
                continue
            if time.monotonic() - idle_since < IDLE_EXIT_S:
                continue
            with server_process.pool_locked(self._root, pool):
                if not self.wanted():  # a deploy that chose us under the lock has written its state
                    log.info("no deployment is served here any more; stopping")
                    os.kill(os.getpid(), signal.SIGTERM)
                    return


def build_dispatcher(pool: AdapterPool) -> Any:
    """The ASGI app: `/d/<endpoint>/<deployment>/<route>` goes to that deployment's app as `/<route>`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        parts = scope["path"].split("/", 4)
        named = len(parts) >= 4 and parts[1] == "d"
        served = pool.served(parts[2], parts[3]) if named else None
        failed = pool.failure(parts[2], parts[3]) if named else None
        rest = "/" + (parts[4] if len(parts) > 4 else "")
        if failed is not None and rest == "/health":  # this incarnation will never be ready: say why
            answer = JSONResponse({"status": "failed", "deployment": parts[3], "created_at": failed[0],
                                   "error": failed[1]}, status_code=503)
        elif served is None:
            answer = JSONResponse({"detail": "no such deployment here (yet)"}, status_code=404)
        elif rest == "/health":  # which incarnation answers: the platform waits for the one it deployed
            answer = JSONResponse({"status": "ready", "deployment": parts[3], "model": served.model_uri,
                                   "created_at": served.created_at})
        else:
            await served.app({**scope, "path": rest, "raw_path": rest.encode()}, receive, send)
            return
        await answer(scope, receive, send)

    return app


def main(argv: list[str] | None = None) -> None:
    """Load the base model, then serve its adapters on the inherited loopback socket (`--fd`)."""
    parser = argparse.ArgumentParser(prog="python -m engine.serve.shared_server",
                                     description=__doc__)
    parser.add_argument("--endpoints-root", type=Path, required=True)
    parser.add_argument("--pool", required=True, help="this server's id (see server_process.pool_id)")
    parser.add_argument("--base-dir", type=Path, required=True, help="the base model's folder")
    parser.add_argument("--fd", type=int, required=True, help="an inherited TCP socket bound to 127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn
    from transformers import AutoModelForCausalLM

    started = time.monotonic()
    log.info("torch uses %d CPU thread(s)", cpu.use_free_cores())
    device, dtype = placement()
    base: Any = AutoModelForCausalLM.from_pretrained(args.base_dir, dtype=dtype)
    base = base.to(device)
    log.info("base model %s loaded in %.1f s", args.base_dir, time.monotonic() - started)
    pool = AdapterPool(base, args.endpoints_root)
    with contextlib.suppress(Exception):
        pool.sync()  # the deployment that started us is usually in the state already
    threading.Thread(target=pool.watch, args=(args.pool,), daemon=True).start()
    config = uvicorn.Config(build_dispatcher(pool), log_level="info", lifespan="off",
                            timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=args.fd)])
    sys.exit(0)


if __name__ == "__main__":
    main()
