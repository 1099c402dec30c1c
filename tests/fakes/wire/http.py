"""The wire under the real SDKs: an azure-core HttpTransport that routes requests to in-memory services.

Every request is recorded (method, host, path, api-version, body) before anything else happens, then
authorized (the permission check of `rbac.py`), then answered by the first route whose method and path
pattern match. Answers are real HTTP responses (status, headers, JSON body) that the SDK parses itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._http_response_impl import RestHttpClientTransportResponse


@dataclass(frozen=True)
class WireRequest:
    """One request as it left the SDK."""

    method: str
    url: str
    host: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[WireRequest, re.Match[str]], Reply]
Authorizer = Callable[[WireRequest], Reply | None]


class _Raw:
    """What RestHttpClientTransportResponse reads: an http.client-like response."""

    def __init__(self, reply: Reply) -> None:
        self.status = reply.status
        reasons = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content"}
        self.reason = reasons.get(reply.status, "Error")
        self._body = b"" if reply.body is None else json.dumps(reply.body).encode()
        self._headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}

    def getheaders(self) -> list[tuple[str, str]]:
        return list(self._headers.items())

    def read(self) -> bytes:
        return self._body


class WireTransport(HttpTransport):  # type: ignore[type-arg]
    """Records, authorizes and answers; an unrouted request is a 404 naming it, so nothing passes silently."""

    def __init__(self, authorize: Authorizer | None = None) -> None:
        self.requests: list[WireRequest] = []
        self.answered: list[tuple[WireRequest, Reply]] = []  # what was served (denials aside)
        self.denied: list[WireRequest] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._authorize = authorize

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer `method` requests whose host+path fully match `pattern` (a regex) with `handler`."""
        self._routes.append((method, re.compile(pattern, re.IGNORECASE), handler))

    def send(self, request: Any, **kwargs: Any) -> RestHttpClientTransportResponse:
        wire = _parse(request)
        self.requests.append(wire)
        refused = self._authorize(wire) if self._authorize else None
        if refused is not None:
            self.denied.append(wire)
            return _respond(request, refused)
        reply = self._dispatch(wire)
        self.answered.append((wire, reply))
        return _respond(request, reply)

    def _dispatch(self, wire: WireRequest) -> Reply:
        target = wire.host + wire.path
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(target)
            if match and method == wire.method:
                return handler(wire, match)
        return arm_error(404, "NoRoute", f"the fake Azure has no route for {wire.method} {target}")

    def sleep(self, duration: float) -> None:
        """The LRO pollers wait through their transport (azure-core's `_sleep`); azure-ai-ml fixes 5 s between
        online-endpoint polls whatever `polling_interval` says. The fake does not sleep through them."""

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> WireTransport:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def of(self, host_part: str) -> Iterator[WireRequest]:
        """The recorded requests to hosts containing `host_part`."""
        return (r for r in self.requests if host_part in r.host)


def _parse(request: Any) -> WireRequest:
    parts = urlsplit(str(request.url))
    raw = request.content if hasattr(request, "content") else request.body
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode()
    body = json.loads(raw) if raw else None
    return WireRequest(method=request.method.upper(), url=str(request.url), host=parts.netloc.lower(),
                       path=unquote(parts.path), query=dict(parse_qsl(parts.query)),
                       headers={k.lower(): v for k, v in request.headers.items()}, body=body)


class _Response(RestHttpClientTransportResponse):
    """An in-memory response that can also be streamed (the ARM poller reads its first response so)."""

    def iter_bytes(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.content

    def iter_raw(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.content


def _respond(request: Any, reply: Reply) -> _Response:
    response = _Response(request=request, internal_response=_Raw(reply))
    response.read()
    return response


def ok(body: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, body, dict(headers))


def arm_error(status: int, code: str, message: str) -> Reply:
    """An error as ARM and the Azure ML service send it: {"error": {"code", "message"}}."""
    return Reply(status, {"error": {"code": code, "message": message}})
