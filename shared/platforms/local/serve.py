"""One local online deployment: a registered chat model behind Azure ML's scoring API and OpenAI's.

`LocalEndpoints` starts one of these per deployment (`python -m shared.platforms.local.serve ...`), handing it
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
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shared.platforms.local.endpoint_state import EndpointFiles, read_state

log = logging.getLogger("autopilot.serve")

WATCH_INTERVAL_S = 2.0
MAX_NEW_TOKENS_CAP = 512


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end-of-turn token) or "length" (ran out of new tokens)


class PromptTooLong(ValueError):
    """The conversation plus the tokens asked for do not fit the model's context."""


class ChatModel:
    """A causal LM and its tokenizer, answering one conversation at a time with its chat template."""

    def __init__(self, model: Any, tokenizer: Any, model_uri: str) -> None:
        self.model_uri = model_uri
        self._model = model.eval()
        self._tokenizer = tokenizer
        self._context = getattr(model.config, "max_position_embeddings", None)
        eos = model.generation_config.eos_token_id
        self._eos = {*(eos if isinstance(eos, list) else [eos]), tokenizer.eos_token_id} - {None}
        # Role markers, padding and BOS never belong inside a reply; decoded they would vanish into "".
        self._suppress = sorted(set(tokenizer.all_special_ids) - self._eos)
        # One generation at a time: the CPU is the bottleneck, and it bounds memory under concurrent calls.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path, model_uri: str) -> ChatModel:
        """Load an `mlflow.transformers` model from its artifact directory.

        A model saved with its weights (what the local trainer logs: LoRA merged) loads straight through
        `from_pretrained`, which skips importing MLflow and starts a deployment seconds sooner; anything
        else (a PEFT adapter, weights referenced from a hub) goes through `mlflow.transformers`.
        """
        import yaml

        flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["transformers"]
        if flavor.get("model_binary") and "tokenizer" in flavor.get("components", []) \
                and not flavor.get("peft_adaptor"):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            model = AutoModelForCausalLM.from_pretrained(model_dir / flavor["model_binary"])
            tokenizer = AutoTokenizer.from_pretrained(model_dir / "components" / "tokenizer")
            return cls(model, tokenizer, model_uri)
        return cls.load_with_mlflow(model_dir, model_uri)

    @classmethod
    def load_with_mlflow(cls, model_dir: Path, model_uri: str) -> ChatModel:
        """Load through `mlflow.transformers` (slower to import, but reads every form it saves)."""
        import mlflow

        parts = mlflow.transformers.load_model(str(model_dir), return_type="components")
        return cls(parts["model"], parts["tokenizer"], model_uri)

    def complete(self, messages: list[dict[str, str]], *, max_new_tokens: int, temperature: float,
                 top_p: float, do_sample: bool) -> Completion:
        """The assistant's next turn (at least one new token), decoded without special tokens."""
        import torch

        prompt = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                     return_tensors="pt", return_dict=True)
        prompt_len = int(prompt["input_ids"].shape[1])
        if self._context and prompt_len + max_new_tokens > self._context:
            raise PromptTooLong(f"the conversation is {prompt_len} tokens; with max_new_tokens="
                                f"{max_new_tokens} it exceeds the model's context of {self._context} tokens")
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "min_new_tokens": 1,
                                   "pad_token_id": self._tokenizer.pad_token_id}
        if self._suppress:
            options["suppress_tokens"] = self._suppress
        # Temperature 0 means greedy, as in OpenAI's API; transformers rejects it for sampling.
        if do_sample and temperature > 0:
            options.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            options.update(do_sample=False)
        with self._lock, torch.inference_mode():
            output = self._model.generate(**prompt, **options)
        new = output[0, prompt_len:]
        return Completion(
            text=self._tokenizer.decode(new, skip_special_tokens=True),
            prompt_tokens=prompt_len,
            completion_tokens=int(new.shape[0]),
            finish_reason="stop" if int(new[-1]) in self._eos else "length",
        )


class Message(BaseModel):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str


class GenerationParameters(BaseModel):
    # Azure's MLflow scoring server passes further generate() kwargs through; unknown ones are ignored here.
    model_config = ConfigDict(extra="ignore")
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    do_sample: bool = False
    max_new_tokens: int = Field(default=16, ge=1, le=MAX_NEW_TOKENS_CAP)


class InputData(BaseModel):
    # One conversation (a list of messages) or a batch of conversations.
    input_string: list[Message] | list[Annotated[list[Message], Field(min_length=1)]] = Field(min_length=1)
    parameters: GenerationParameters = Field(default_factory=GenerationParameters)


class ScoreRequest(BaseModel):
    input_data: InputData
    params: dict[str, Any] = Field(default_factory=dict)


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS_CAP)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS_CAP)
    n: int = Field(default=1, ge=1, le=1)
    stream: bool = Field(default=False, description="streaming is not offered; must be false")


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

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ready", "deployment": deployment, "model": chat.model_uri}

    @app.post("/score")
    def score(body: ScoreRequest) -> dict[str, Any]:
        p = body.input_data.parameters
        batch = body.input_data.input_string
        conversations = batch if isinstance(batch[0], list) else [batch]
        outputs = [
            _generate(chat, _as_dicts(conv), p.max_new_tokens, p.temperature, p.top_p, p.do_sample).text
            for conv in conversations  # type: ignore[union-attr]
        ]
        _record_request(files.requests)
        return {"output": outputs if isinstance(batch[0], list) else outputs[0]}

    @app.post("/v1/chat/completions")
    def chat_completions(body: ChatCompletionRequest) -> dict[str, Any]:
        if body.stream:
            raise HTTPException(400, "stream=true is not supported by local deployments")
        max_new = body.max_completion_tokens or body.max_tokens or 16
        done = _generate(chat, _as_dicts(body.messages), max_new, body.temperature, body.top_p,
                         body.temperature > 0)
        _record_request(files.requests)
        return _openai_completion(done, body.model or deployment)

    return app


def _key_matches(request: Request, key: str) -> bool:
    auth = request.headers.get("authorization", "")
    supplied = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("api-key", "")
    return bool(supplied) and hmac.compare_digest(supplied.encode(), key.encode())


def _as_dicts(messages: list[Message]) -> list[dict[str, str]]:
    return [m.model_dump() for m in messages]


def _generate(chat: ChatModel, messages: list[dict[str, str]], max_new_tokens: int, temperature: float,
              top_p: float, do_sample: bool) -> Completion:
    try:
        return chat.complete(messages, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                             do_sample=do_sample)
    except PromptTooLong as exc:
        raise HTTPException(400, str(exc)) from exc


def _openai_completion(done: Completion, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text},
                     "finish_reason": done.finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
                  "total_tokens": done.prompt_tokens + done.completion_tokens},
    }


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
    parser = argparse.ArgumentParser(prog="python -m shared.platforms.local.serve", description=__doc__)
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
