"""HTTP: the runs API and the status page, and the operator actions redeploy and retry.

Function-key auth on Azure (auth_level FUNCTION); the devhost serves them open on 127.0.0.1.
Unknown run → 404, an action the run's state does not allow → 409, both with a JSON `error` message.
"""

import json
import logging
from typing import Any

import azure.functions as func

from functions.worker import lifecycle
from shared import ops
from shared.observability import handling

bp = func.Blueprint()
log = logging.getLogger(__name__)
AUTH = func.AuthLevel.FUNCTION


def _json(status: int, value: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value, default=str), status_code=status, mimetype="application/json")


def _run_id(req: func.HttpRequest) -> str:
    return str(req.route_params.get("id", ""))


@bp.function_name("runs_list")
@bp.route(route="runs", methods=["GET"], auth_level=AUTH)
def runs_list(req: func.HttpRequest) -> func.HttpResponse:
    """Every run with its lineage, newest first, plus live endpoints and recent alerts."""
    return _json(200, ops.overview(lifecycle()))


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
    """Deploy a torn-down or rolled-back run's model again (synchronously: deploy, smoke test, traffic)."""
    return _act(ops.redeploy, _run_id(req), "redeploy")


@bp.function_name("runs_retry")
@bp.route(route="runs/{id}/retry", methods=["POST"], auth_level=AUTH)
def runs_retry(req: func.HttpRequest) -> func.HttpResponse:
    """Submit a failed or canceled run's staged data again as a new job."""
    return _act(ops.retry, _run_id(req), "retry")


@bp.function_name("status_page")
@bp.route(route="status", methods=["GET"], auth_level=AUTH)
def status_page(req: func.HttpRequest) -> func.HttpResponse:
    """The status page: runs, timelines, training figures, live endpoints, alerts. Server-rendered HTML."""
    html = ops.render_status_page(ops.overview(lifecycle()))
    return func.HttpResponse(html, status_code=200, mimetype="text/html", charset="utf-8")


def _act(action: Any, run_id: str, name: str) -> func.HttpResponse:
    life = lifecycle()
    with handling(run_id=run_id):
        try:
            run = action(life, run_id)
        except ops.RunNotFound as exc:
            return _json(404, {"error": str(exc), "run_id": run_id})
        except ops.ActionRefused as exc:
            return _json(409, {"error": str(exc), "run_id": run_id, "action": name})
        log.info("%s of run %s requested by an operator: now %s", name, run_id, run.state)
        return _json(200, ops.run_document(life, run))
