"""A local endpoint's stable address: one small proxy per endpoint on a port that outlives its deployments.

On Azure an endpoint's URL survives blue/green swaps and the deletion of every deployment; locally each
deployment is a server on a port of its own, so the endpoint gets this router (`python -m
engine.serve.router`), started with the endpoint and kept until it is deleted. It routes as Azure ML
does: to the deployment named by `azureml-model-deployment`, else by the traffic split, read from the
endpoint's state file; with no deployment to route to it answers 404 "No valid deployments to route to", as
Azure ML does for an asleep model. Keys are checked by the deployment itself (the header is passed on).
The router exits by itself once the endpoint's state file is gone.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from shared.platforms.local.endpoint_files import EndpointFiles, EndpointState, read_state

log = logging.getLogger("autopilot.router")

DEPLOYMENT_HEADER = "azureml-model-deployment"
WATCH_INTERVAL_S = 2.0
# Hop-by-hop headers (RFC 9110 §7.6.1) and those httpx sets itself are not passed on.
_DROPPED = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
                      "upgrade", "proxy-authorization", "proxy-authenticate", "trailer"})


def target(state: EndpointState | None, named: str | None) -> str | None:
    """The base URL of the deployment a request goes to: the one named, else the one with the most
    traffic (its own server's, or its prefix on its base model's shared server)."""
    if state is None:
        return None
    if named:
        entry = state.deployments.get(named)
    else:
        leading, share = max(state.traffic.items(), key=lambda item: item[1], default=(None, 0))
        entry = state.deployments.get(leading) if leading and share > 0 else None
    return f"http://127.0.0.1:{entry.port}{entry.prefix}" if entry is not None and entry.pid is not None \
        else None


def build_app(files: EndpointFiles) -> Starlette:
    """The router's ASGI app over the endpoint's state file."""
    client = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=5.0))

    async def route(request: Request) -> Response:
        base = target(read_state(files), request.headers.get(DEPLOYMENT_HEADER))
        if base is None:
            return JSONResponse({"message": "No valid deployments to route to. Please check that the "
                                 "endpoint has at least one deployment with positive weight values or use "
                                 "a deployment specific header to route."}, status_code=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        outgoing = client.build_request(request.method, f"{base}{request.url.path}",
                                        params=request.query_params, headers=headers,
                                        content=await request.body())
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.TransportError as exc:
            return JSONResponse({"message": f"the deployment did not answer ({type(exc).__name__})"},
                                status_code=502)

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_raw():
                    yield chunk
            finally:
                await answer.aclose()

        passed = {k: v for k, v in answer.headers.items() if k.lower() not in _DROPPED}
        return StreamingResponse(body(), status_code=answer.status_code, headers=passed)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "routing", "endpoint": files.root.name})

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/router/health", health), Route("/{path:path}", route, methods=methods)])


def watch_state(files: EndpointFiles, interval_s: float = WATCH_INTERVAL_S) -> None:
    """Stop this process once the endpoint is deleted (its state file is gone)."""
    while True:
        time.sleep(interval_s)
        if not files.state.exists():
            log.warning("endpoint %s was deleted; its router stops", files.root.name)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def main(argv: list[str] | None = None) -> None:
    """Serve the endpoint's router on the inherited loopback socket (`--fd`)."""
    parser = argparse.ArgumentParser(prog="python -m engine.serve.router", description=__doc__)
    parser.add_argument("--endpoint-dir", type=Path, required=True)
    parser.add_argument("--fd", type=int, required=True, help="an inherited TCP socket bound to 127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn

    files = EndpointFiles(args.endpoint_dir)
    threading.Thread(target=watch_state, args=(files,), daemon=True).start()
    config = uvicorn.Config(build_app(files), log_level="warning", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=args.fd)])
    sys.exit(0)


if __name__ == "__main__":
    main()
