"""One local online deployment: a registered chat model behind Azure ML's scoring API and OpenAI's.

`LocalEndpoints` starts one of these per deployment (`python -m engine.serve.model_server ...`), handing it
an already bound 127.0.0.1 socket, so the port it records is the port the server answers on. Like an Azure ML
endpoint it wants the endpoint key (`Authorization: Bearer KEY` or `api-key: KEY`) on every route but
/health, and it answers the seed's payload on POST /score and OpenAI's on POST /v1/chat/completions.
The server exits by itself once its deployment leaves the endpoint's state, so deleting state (or the whole
data directory) never leaves a model process behind.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from engine import cpu
from engine.chat_format import ChatFormatError
from engine.chat_model import ChatModel, Completion, PromptTooLong
from engine.serve import score_api
from engine.serve.openai_api import ChatCompletionRequest, completion_body, stream_events
from shared.platforms.local.endpoint_files import EndpointFiles, read_state

log = logging.getLogger("autopilot.serve")

WATCH_INTERVAL_S = 2.0


def build_app(chat: ChatModel, key: str, files: EndpointFiles, deployment: str) -> FastAPI:
    """The deployment's ASGI app: `chat` answers, `key` guards, `files.requests` records scored requests."""
    app = FastAPI(title=f"local deployment {deployment}", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def require_key(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Checked before routing and body parsing, so nothing about a request is revealed without the key.
        if request.url.path != "/health" and not _key_matches(request, key):
            return JSONResponse({"detail": "missing or invalid endpoint key"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        # OpenAI's error object too, so its clients show the reason rather than a bare status code.
        body: dict[str, Any] = {"detail": exc.detail}
        if request.url.path.startswith("/v1/") or request.url.path == "/score":
            body["error"] = {"message": str(exc.detail), "type": "invalid_request_error", "code": None}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ready", "deployment": deployment, "model": chat.model_uri}

    @app.post("/score")
    async def score(request: Request) -> Response:
        body = await _json(request)
        if isinstance(body, dict) and "messages" in body:  # the Azure OpenAI style body, as some samples send
            return await run_in_threadpool(_openai, chat, _chat_request(body), deployment, files)
        try:
            parsed = score_api.parse(body)
        except score_api.BadRequest as exc:
            raise HTTPException(422, str(exc)) from None
        p = parsed.parameters
        done = await run_in_threadpool(_complete_many, chat, parsed.conversations, p.max_new_tokens,
                                       p.temperature, p.top_p, p.do_sample)
        _record_request(files.requests)
        return JSONResponse(score_api.answer(parsed, [d.text for d in done]))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = _chat_request(await _json(request))
        return await run_in_threadpool(_openai, chat, body, deployment, files)

    return app


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise HTTPException(422, "the body is not valid JSON") from None


def _chat_request(body: Any) -> ChatCompletionRequest:
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        # One sentence naming the field, as the /score shapes answer, not pydantic's list of error objects.
        raise HTTPException(422, _invalid(exc)) from None


def _invalid(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "the body"
    if tuple(error["loc"]) == ("messages",):  # missing, empty or not a list
        return "messages must be a non-empty list of {\"role\": ..., \"content\": ...} messages"
    return f"{where}: {error['msg']}"


def _openai(chat: ChatModel, body: ChatCompletionRequest, deployment: str, files: EndpointFiles) -> Response:
    """A chat.completion, or (stream: true) its server-sent events; either way one recorded request."""
    name = body.model or deployment
    if body.stream:
        _check_fits(chat, body.conversation(), body.generation()["max_new_tokens"], body.tools)
        _record_request(files.requests)
        return StreamingResponse(stream_events(chat, body, name), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    generation = body.generation()
    done = _complete_many(chat, [body.conversation()], generation.pop("max_new_tokens"), **generation)
    _record_request(files.requests)
    return JSONResponse(completion_body(done[0], name))


def _key_matches(request: Request, key: str) -> bool:
    auth = request.headers.get("authorization", "")
    supplied = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("api-key", "")
    return bool(supplied) and hmac.compare_digest(supplied.encode(), key.encode())


def _complete_many(chat: ChatModel, conversations: list[list[dict[str, Any]]], max_new_tokens: int,
                   temperature: float, top_p: float, do_sample: bool,
                   tools: list[dict[str, Any]] | None = None) -> list[Completion]:
    try:
        return chat.complete_many(conversations, max_new_tokens=max_new_tokens, temperature=temperature,
                                  top_p=top_p, do_sample=do_sample, tools=tools)
    except (PromptTooLong, ChatFormatError) as exc:
        raise HTTPException(400, str(exc)) from exc


def _check_fits(chat: ChatModel, conversation: list[dict[str, Any]], max_new_tokens: int,
                tools: list[dict[str, Any]] | None = None) -> None:
    """Refuse a stream that cannot fit (or whose tools the template cannot render) before its 200 and
    headers go out."""
    try:
        chat.encode([conversation], max_new_tokens, tools)
    except (PromptTooLong, ChatFormatError) as exc:
        raise HTTPException(400, str(exc)) from exc


def _record_request(request_log: Path) -> None:
    # One short O_APPEND write per request: concurrent deployments of one endpoint never interleave lines.
    line = datetime.now(UTC).isoformat(timespec="milliseconds") + "\n"
    fd = os.open(request_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def watch_state(files: EndpointFiles, deployment: str, interval_s: float = WATCH_INTERVAL_S) -> None:
    """Stop this process once the endpoint's state no longer names it as `deployment`'s server."""
    while True:
        time.sleep(interval_s)
        try:
            state = read_state(files)
        except (OSError, ValueError):
            continue  # a passing read error is no reason to stop serving; a missing file is (below)
        entry = state.deployments.get(deployment) if state else None
        if entry is None or entry.pid != os.getpid():
            log.warning("deployment %s is no longer in the endpoint's state; stopping", deployment)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def main(argv: list[str] | None = None) -> None:
    """Load and warm the model, then serve it on the inherited loopback socket (`--fd`)."""
    parser = argparse.ArgumentParser(prog="python -m engine.serve.model_server", description=__doc__)
    parser.add_argument("--endpoint-dir", type=Path, required=True)
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--model-dir", type=Path, required=True, help="the model version's MLflow artifacts")
    parser.add_argument("--model-uri", required=True, help="models:/NAME/VERSION, as /health reports it")
    parser.add_argument("--fd", type=int, required=True, help="an inherited TCP socket bound to 127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn

    files = EndpointFiles(args.endpoint_dir)
    # Watch from the start, so a deployment deleted while its model loads does not linger either.
    threading.Thread(target=watch_state, args=(files, args.deployment), daemon=True).start()
    # The key comes from its 0600 file, never from argv or the environment, which other users can read.
    key = files.key.read_text().strip()
    started = time.monotonic()
    log.info("torch uses %d CPU thread(s)", cpu.use_free_cores())
    chat = ChatModel.load(args.model_dir, args.model_uri)
    # One token before reporting ready: a model or chat template that cannot answer fails the deploy, and the
    # first real request does not pay the warm-up.
    chat.complete([{"role": "user", "content": "ready?"}], max_new_tokens=1, temperature=0, top_p=1,
                  do_sample=False)
    log.info("model %s loaded and warmed in %.1f s", args.model_uri, time.monotonic() - started)

    app = build_app(chat, key, files, args.deployment)
    config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=args.fd)])
    sys.exit(0)


if __name__ == "__main__":
    main()
