"""Core Tools' local routes over the registered functions: webhooks, admin and HTTP triggers.

Event Grid semantics: 200 when every function call returned, 500 when one raised (Event Grid would retry),
400 for a body that is not an event, 404 for a function that is not registered with that trigger. The blob
webhook, as the host's, only queues a blob trigger message per event and answers 202 (devhost/queues.py runs
it, with the host's retries and poison queue).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from devhost import triggers
from devhost.queues import queue_argument
from devhost.triggers import HostedFunction, Invoker
from shared.events import BLOB_CREATED, BlobTriggerMessage
from shared.queues import Delivery, MessageQueue
from shared.storage import blob_service, split_blob_url

log = logging.getLogger("devhost")

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
# Uploads are complete only after these operations; PutBlock, for one, is a partial write.
COMPLETING_APIS = frozenset({"PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"})


@dataclass
class Reply:
    """An HTTP answer: status, body and headers."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] | None = None

    @classmethod
    def json(cls, status: int, value: Any) -> Reply:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

    @classmethod
    def text(cls, status: int, message: str) -> Reply:
        return cls(status, message.encode(), {"Content-Type": "text/plain; charset=utf-8"})


class Routes:
    """Dispatches one request (method, path with query, headers, body) to the function it names."""

    def __init__(self, functions: Mapping[str, HostedFunction], env: Mapping[str, str], invoker: Invoker,
                 route_prefix: str = "api", blob_queues: Mapping[str, MessageQueue] | None = None) -> None:
        self.functions = functions
        self.blob_queues = blob_queues or {}
        self.env = env
        self.invoker = invoker
        self.prefix = route_prefix.strip("/")
        self._http = [(f, _route_pattern(self.prefix, str(f.trigger.get("route") or f.name)))
                      for f in functions.values() if f.trigger_type == triggers.HTTP]

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """The reply to one request; never raises."""
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/") or "/"
        if path in ("/runtime/webhooks/eventgrid", "/runtime/webhooks/blobs"):
            kind = triggers.EVENT_GRID if path.endswith("eventgrid") else triggers.BLOB
            return self._webhook(kind, method, query.get("functionName", ""), headers, body)
        if path == "/admin/functions" and method == "GET":
            return Reply.json(200, [f.metadata() for f in self.functions.values()])
        if path.startswith("/admin/functions/"):
            return self._admin(method, path.removeprefix("/admin/functions/"), body)
        if path == "/admin/host/status":
            return Reply.json(200, {"state": "Running"})
        for function, pattern in self._http:
            match = pattern.fullmatch(path)
            if match:
                return self._http_call(function, match, method, target, query, headers, body)
        if path == "/":
            return Reply.text(200, "The devhost is up and running; GET /admin/functions lists the functions.")
        return Reply.text(404, f"no route for {method} {path}")

    def _webhook(self, kind: str, method: str, name: str, headers: Mapping[str, str], body: bytes) -> Reply:
        name = name.removeprefix("Host.Functions.")
        function = self.functions.get(name)
        if function is None or function.trigger_type != kind:
            return Reply.text(404, f"no {kind} function named {name!r}")
        if method == "OPTIONS":  # CloudEvents webhook validation (abuse protection)
            origin = headers.get("webhook-request-origin", "*")
            return Reply(200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            return Reply.text(400, "the body is not JSON")
        events = parsed if isinstance(parsed, list) else [parsed]
        if not all(isinstance(e, dict) for e in events):
            return Reply.text(400, "the body is not an event or an array of events")
        delivery = headers.get("aeg-event-type", "")
        if delivery == "SubscriptionValidation":
            return _validation_reply(events)
        if delivery == "Unsubscribe":
            return Reply(202)
        if delivery != "Notification":
            return Reply.text(400, "header aeg-event-type must be Notification or SubscriptionValidation")
        failed = 0
        for event in events:
            try:
                self._deliver(function, event)
            except Exception:  # logged by the invoker; Event Grid learns of it through the 500
                failed += 1
        if failed:
            return Reply.text(500, f"{failed} of {len(events)} invocations of {name} failed")
        return Reply(202 if kind == triggers.BLOB else 200)

    def _deliver(self, function: HostedFunction, event: dict[str, Any]) -> None:
        if function.trigger_type == triggers.EVENT_GRID:
            self.invoker.invoke(function, triggers.event_grid_argument(event), reason="EventGrid trigger")
            return
        data = event["data"] if isinstance(event.get("data"), dict) else {}
        event_type, api, url = event.get("eventType", event.get("type")), data.get("api"), data.get("url")
        if event_type != BLOB_CREATED or not isinstance(url, str):
            log.info("%s: ignored %s event %s", function.name, event_type, event.get("id"))
            return
        if api not in COMPLETING_APIS:
            log.info("%s: ignored BlobCreated for %s: api %s does not complete an upload",
                     function.name, url, api)
            return
        container, name_pattern = triggers.blob_path(function)
        blob_container, blob_name = split_blob_url(url)
        if blob_container != container or not name_pattern.fullmatch(blob_name):
            log.info("%s: ignored BlobCreated for %s: outside path %s", function.name, url,
                     function.trigger["path"])
            return
        message = BlobTriggerMessage(f"Host.Functions.{function.name}", blob_container, blob_name,
                                     f'"{data.get("eTag", "")}"')
        self.blob_queues[function.name].send(json.dumps(message.to_json()))

    def _admin(self, method: str, name: str, body: bytes) -> Reply:
        function = self.functions.get(name)
        if function is None:
            return Reply.text(404, f"no function named {name!r}")
        if method == "GET":
            return Reply.json(200, function.metadata())
        if method != "POST":
            return Reply.text(405, "use GET or POST")
        if function.trigger_type == triggers.HTTP:
            return Reply.text(400, f"{name} is an HTTP function; call its route instead")
        try:
            payload = json.loads(body or b"{}").get("input")
            argument = self._admin_argument(function, payload)
        except (ValueError, AttributeError) as exc:
            return Reply.text(400, f"bad input for {name}: {exc}")
        # Like the host: accept at once and run the function in the background.
        self.invoker.invoke_in_background(function, argument, reason="This function was programmatically "
                                                                     "called via the host APIs.")
        return Reply(202)

    def _admin_argument(self, function: HostedFunction, payload: Any) -> Any:
        if function.trigger_type == triggers.TIMER:
            return triggers.timer_argument(past_due=False)
        if function.trigger_type == triggers.QUEUE:  # the input is the message text, as in Core Tools
            if not isinstance(payload, str):
                raise ValueError("input must be the queue message's text")
            return queue_argument(Delivery(id=str(uuid.uuid4()), text=payload, dequeue_count=1, receipt=""))
        if function.trigger_type == triggers.EVENT_GRID:
            event = json.loads(payload) if isinstance(payload, str) else payload
            if not isinstance(event, dict):
                raise ValueError("input must be an Event Grid event (object or JSON string)")
            return triggers.event_grid_argument(event)
        # Blob trigger: the input is the blob's path, 'container/name'.
        if not isinstance(payload, str) or "/" not in payload:
            raise ValueError("input must be a blob path 'container/name'")
        service = blob_service(triggers.storage_for(str(function.trigger["connection"]), self.env))
        container, name = payload.split("/", 1)
        return triggers.blob_argument(function, service.get_blob_client(container, name).url, self.env)

    def _http_call(self, function: HostedFunction, match: re.Match[str], method: str, target: str,
                   query: Mapping[str, str], headers: Mapping[str, str], body: bytes) -> Reply:
        methods = [str(m).upper() for m in function.trigger.get("methods") or []]
        if methods and method not in methods:
            return Reply.text(405, f"{function.name} accepts {', '.join(methods)}")
        request = func.HttpRequest(method, f"http://{headers.get('host') or '127.0.0.1'}{target}",
                                   headers=dict(headers), params=query,
                                   route_params={k: v for k, v in match.groupdict().items() if v is not None},
                                   body=body)
        try:
            result = self.invoker.invoke(function, request, reason=f"This function was programmatically "
                                                                   f"called via HTTP {method}")
        except Exception:
            return Reply.text(500, "Internal Server Error")
        if isinstance(result, func.HttpResponse):
            reply_headers = dict(result.headers)
            reply_headers.setdefault("Content-Type", f"{result.mimetype}; charset={result.charset}")
            return Reply(result.status_code, result.get_body(), reply_headers)
        if result is None:
            return Reply(204)
        return Reply.text(200, result if isinstance(result, str) else json.dumps(result))


def _validation_reply(events: list[dict[str, Any]]) -> Reply:
    for event in events:
        data = event.get("data")
        if event.get("eventType") == VALIDATION_EVENT and isinstance(data, dict) \
                and data.get("validationCode"):
            return Reply.json(200, {"validationResponse": data["validationCode"]})
    return Reply.text(400, "no SubscriptionValidationEvent with a validationCode in the body")


def _route_pattern(prefix: str, template: str) -> re.Pattern[str]:
    """A regex for an HTTP route template: `{id}`, `{id:int}`, optional `{id?}`, catch-all `{*rest}`."""
    parts = [f"/{prefix}" if prefix else ""]
    for segment in template.strip("/").split("/"):
        param = re.fullmatch(r"\{(\*?)(\w+)(?::(\w+))?(\?)?\}", segment)
        if not param:
            parts.append("/" + re.escape(segment))
            continue
        catch_all, name, constraint, optional = param.groups()
        value = ".*" if catch_all else r"-?\d+" if constraint in ("int", "long") else "[^/]+"
        parts.append(f"(?:/(?P<{name}>{value})){'?' if optional or catch_all else ''}")
    return re.compile("".join(parts), re.IGNORECASE)
