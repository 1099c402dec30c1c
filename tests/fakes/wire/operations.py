"""Azure ML's long-running operations, as the SDK's ARM poller meets them.

A PUT or DELETE answers 201/202 with `Azure-AsyncOperation` (the status URL, `mfeOperationsStatus`) and
`Location` (the resource, or for a DELETE `mfeOperationResults`), with no Retry-After, as the recordings
show (tests set the SDK's `polling_interval` to 0 instead). The status
reads "Updating" for a few polls, then the operation's effect happens and it reads "Succeeded" — or "Failed"
with the error, and the resource keeps provisioningState Failed. The service works whether or not anyone
polls the operation: a client that only reads the resource (the deploy steps poll provisioningState and never
await the LRO) sees it finish too, since every read of an endpoint or deployment is a step of each pending
operation (`work`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tests.fakes.wire.arm import Clock
from tests.fakes.wire.http import Reply, WireRequest, WireTransport, arm_error, ok
from tests.fakes.wire.ids import ARM, LOCATION, PROVIDER, SUBSCRIPTION, WORKSPACE_GUID, stamp

STATUS_PATH = f"/subscriptions/{SUBSCRIPTION}/providers/{PROVIDER}/locations/{LOCATION}"
POLLS_BEFORE_DONE = 2


@dataclass
class Operation:
    """One operation: what it does when it ends, and the request that started it (its authorization)."""

    id: str
    origin: WireRequest
    started: datetime
    on_success: Callable[[], None]
    on_failure: Callable[[], None]
    error: tuple[str, str] | None = None
    polls_left: int = POLLS_BEFORE_DONE
    ended: datetime | None = None

    @property
    def status(self) -> str:
        if self.ended is None:
            return "Updating"
        return "Failed" if self.error else "Succeeded"


class Operations:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.started: dict[str, Operation] = {}
        self.polls = 0
        self._ids = itertools.count(1)

    def mount(self, wire: WireTransport) -> None:
        base = re.escape(f"{ARM}{STATUS_PATH}")
        wire.route("GET", rf"{base}/mfeOperationsStatus/(?P<id>[^/]+)", self.get_status)
        wire.route("GET", rf"{base}/mfeOperationResults/(?P<id>[^/]+)", self.get_result)

    def start(self, prefix: str, origin: WireRequest, on_success: Callable[[], None],
              on_failure: Callable[[], None] = lambda: None,
              error: tuple[str, str] | None = None) -> dict[str, str]:
        """Begin an operation; the response headers that point the poller at it."""
        op_id = f"{prefix}:{WORKSPACE_GUID}:{next(self._ids):08d}-0000-0000-0000-000000000000"
        self.started[op_id] = Operation(op_id, origin, self.clock(), on_success, on_failure, error)
        version = origin.api_version
        headers = {"Azure-AsyncOperation": f"https://{ARM}{STATUS_PATH}/mfeOperationsStatus/{op_id}"
                                           f"?api-version={version}",
                   "x-ms-async-operation-timeout": "PT30M"}
        if origin.method == "DELETE":
            headers["Location"] = f"https://{ARM}{STATUS_PATH}/mfeOperationResults/{op_id}?api-version={version}"
        else:
            headers["Location"] = origin.url
        return headers

    def get_status(self, request: WireRequest, match: re.Match[str]) -> Reply:
        op = self.started.get(match["id"])
        if op is None:
            return arm_error(404, "NotFound", f"operation {match['id']} not found")
        self.polls += 1
        self._step(op)
        body: dict[str, object] = {"id": f"{STATUS_PATH}/mfeOperationsStatus/{op.id}", "name": op.id,
                                   "startTime": stamp(op.started), "percentComplete": 0.0 if op.ended is None
                                   else 100.0, "status": op.status}
        if op.ended is not None:
            body["endTime"] = stamp(op.ended)
        if op.error and op.ended is not None:
            body["error"] = {"code": op.error[0], "message": op.error[1]}
        return ok(body)

    def work(self) -> None:
        """One step of every pending operation (the service's own progress between two requests)."""
        for op in list(self.started.values()):
            self._step(op)

    def _step(self, op: Operation) -> None:
        if op.ended is None:
            if op.polls_left > 0:
                op.polls_left -= 1
            else:
                op.ended = self.clock()
                (op.on_failure if op.error else op.on_success)()

    def get_result(self, request: WireRequest, match: re.Match[str]) -> Reply:
        op = self.started.get(match["id"])
        if op is None or op.ended is None:
            return Reply(202, None, {"Location": request.url})
        return Reply(204)

    def origin_of(self, op_id: str) -> WireRequest | None:
        """The request that started the operation (a status poll is authorized as that request was)."""
        op = self.started.get(op_id)
        return op.origin if op else None
