"""HTTP: the runs API and the status page, and the operator actions redeploy and retry.

Function-key auth on Azure (auth_level FUNCTION); the devhost serves them open on 127.0.0.1.
Unknown run → 404, an action the run's state does not allow → 409, both with a JSON `error` message. The
actions are asynchronous: they record the request, queue the run's next step and answer 202 Accepted at once,
with `Location` naming the run (GET it to follow the deployment or the job).
"""

import json
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import azure.functions as func

from functions.worker import lifecycle
from shared import ops
from shared.observability import handling

bp = func.Blueprint()
log = logging.getLogger(__name__)
AUTH = func.AuthLevel.FUNCTION


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value, default=str), status_code=status, mimetype="application/json",
                             headers=headers)


def _run_id(req: func.HttpRequest) -> str:
    return str(req.route_params.get("id", ""))


@bp.function_name("runs_list")
@bp.route(route="runs", methods=["GET"], auth_level=AUTH)
def runs_list(req: func.HttpRequest) -> func.HttpResponse:
    """Every run with its lineage, newest first, plus projects, live endpoints and recent alerts;
    `?project=P`: project P's only."""
    return _json(200, ops.overview(lifecycle(), project=req.params.get("project") or None))


@bp.function_name("runs_get")
@bp.route(route="runs/{id}", methods=["GET"], auth_level=AUTH)
def runs_get(req: func.HttpRequest) -> func.HttpResponse:
    """One run, or 404."""
    life = lifecycle()
    try:
        return _json(200, ops.run_document(life, ops.find_run(life, _run_id(req))))
    except ops.RunNotFound as exc:
        return _json(404, {"error": str(exc), "run_id": exc.run_id})


@bp.function_name("runs_redeploy")
@bp.route(route="runs/{id}/redeploy", methods=["POST"], auth_level=AUTH)
def runs_redeploy(req: func.HttpRequest) -> func.HttpResponse:
    """Deploy a torn-down or rolled-back run's model again: 202, the deploy step queued."""
    return _act(req, ops.redeploy, "redeploy")


@bp.function_name("runs_retry")
@bp.route(route="runs/{id}/retry", methods=["POST"], auth_level=AUTH)
def runs_retry(req: func.HttpRequest) -> func.HttpResponse:
    """Submit a failed or canceled run's staged data again as a new job: 202, the submit step queued."""
    return _act(req, ops.retry, "retry")


@bp.function_name("status_page")
@bp.route(route="status", methods=["GET"], auth_level=AUTH)
def status_page(req: func.HttpRequest) -> func.HttpResponse:
    """The status page: runs, timelines, training figures, live endpoints, alerts. Server-rendered HTML."""
    html = ops.render_status_page(ops.overview(lifecycle(), project=req.params.get("project") or None))
    return func.HttpResponse(html, status_code=200, mimetype="text/html", charset="utf-8",
                             headers=ops.PAGE_HEADERS)


def _act(req: func.HttpRequest, action: Any, name: str) -> func.HttpResponse:
    life = lifecycle()
    run_id = _run_id(req)
    with handling(run_id=run_id):
        try:
            run = action(life, run_id)
        except ops.RunNotFound as exc:
            return _json(404, {"error": str(exc), "run_id": run_id})
        except ops.ActionRefused as exc:
            return _json(409, {"error": str(exc), "run_id": run_id, "action": name})
        log.info("%s of run %s requested by an operator: now %s", name, run_id, run.state)
        return _json(202, ops.run_document(life, run), {"Location": _run_url(req.url, name)})


def _run_url(action_url: str, name: str) -> str:
    """The run's own URL (`.../runs/{id}`), from the action's (`.../runs/{id}/<name>`), query dropped."""
    parts = urlsplit(action_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/").removesuffix(f"/{name}"), "", ""))
