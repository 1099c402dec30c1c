"""The front door's error answers, shaped as OpenAI's (`{"error": {"message", "type", "code", "param"}}`) with
the headers the `openai` client reads to decide whether and when to retry: `retry-after-ms`, `Retry-After`
(whole seconds, at most 60, which every client version honours) and `x-should-retry`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

RETRY_AFTER_MAX_S = 60


@dataclass(frozen=True)
class Refusal(Exception):
    """An answer other than the model's: `status`, OpenAI's `code`, a message a user can act on, and for a 503
    whether and after how long a client should try again."""

    status: int
    code: str
    message: str
    retry_after_s: float | None = None
    should_retry: bool | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def body(self) -> dict[str, Any]:
        kind = {401: "authentication_error", 404: "invalid_request_error", 400: "invalid_request_error"}
        return {"error": {"message": self.message, "type": kind.get(self.status, "server_error"),
                          "code": self.code, "param": None}}

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if self.retry_after_s is not None:
            seconds = min(RETRY_AFTER_MAX_S, max(1, math.ceil(self.retry_after_s)))
            headers["Retry-After"] = str(seconds)
            headers["retry-after-ms"] = str(seconds * 1000)
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers
