"""HTTP: the front door, OpenAI-compatible at /api/v1 (see shared/front).

    GET  /api/v1/models                  the models (projects) the key opens, each with its state
    POST /api/v1/chat/completions        OpenAI chat; `stream: true` answers server-sent events
    POST /api/v1/models/{model}/score    the seed's scoring payload, to the model's live deployment

Anonymous at the Functions level: clients send the front door's own key as `Authorization: Bearer KEY`, as
the `openai` client does (a function key would have to travel as `x-functions-key` or `?code=`).
Streaming: without the FastAPI extension (docs/azure.md says why) a streamed answer is sent whole, as one
body of server-sent events, once it is complete; clients read it as a stream all the same.
"""

import json
import logging
from typing import Any

import azure.functions as func

from functions.worker import front
from shared.front import Refusal
from shared.observability import handling

bp = func.Blueprint()
log = logging.getLogger(__name__)
AUTH = func.AuthLevel.ANONYMOUS


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value, default=str), status_code=status, mimetype="application/json",
                             headers=headers)


def _refused(refusal: Refusal) -> func.HttpResponse:
    if refusal.status >= 500:
        log.warning("front door: %s", refusal)
    return _json(refusal.status, refusal.body(), refusal.headers())


def _headers(req: func.HttpRequest) -> dict[str, str]:
    return {k.lower(): v for k, v in req.headers.items()}


def _body(req: func.HttpRequest) -> dict[str, Any]:
    try:
        body = req.get_json()
    except ValueError:
        raise Refusal(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Refusal(400, "invalid_request", "the body must be a JSON object")
    return body


@bp.function_name("front_models")
@bp.route(route="v1/models", methods=["GET"], auth_level=AUTH)
def front_models(req: func.HttpRequest) -> func.HttpResponse:
    """The models this front door serves, asleep or awake, as OpenAI lists them."""
    try:
        door = front()
        return _json(200, door.models(door.authorize(_headers(req))))
    except Refusal as refusal:
        return _refused(refusal)


@bp.function_name("front_chat")
@bp.route(route="v1/chat/completions", methods=["POST"], auth_level=AUTH)
def front_chat(req: func.HttpRequest) -> func.HttpResponse:
    """A chat completion from the named model, woken first if it is asleep (held up to FRONT_HOLD)."""
    with handling():
        try:
            door = front()
            headers = _headers(req)
            scope = door.authorize(headers)
            body = _body(req)
            hold = door.hold_for(headers)
            if body.get("stream"):
                events = "".join(door.chat_stream(body, hold, scope))
                return func.HttpResponse(events, status_code=200, mimetype="text/event-stream",
                                         headers={"Cache-Control": "no-cache"})
            return _json(200, door.chat(body, hold, scope))
        except Refusal as refusal:
            return _refused(refusal)


@bp.function_name("front_score")
@bp.route(route="v1/models/{model}/score", methods=["POST"], auth_level=AUTH)
def front_score(req: func.HttpRequest) -> func.HttpResponse:
    """The seed's scoring payload (`{"input_data": ...}`) to the model's live deployment."""
    with handling():
        try:
            door = front()
            headers = _headers(req)
            scope = door.authorize(headers)
            model = str(req.route_params.get("model", ""))
            return _json(200, door.score(model, _body(req), door.hold_for(headers), scope))
        except Refusal as refusal:
            return _refused(refusal)
