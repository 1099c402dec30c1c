"""FrontDoor: a request names a model; the front forwards it to the live deployment, or wakes the model.

A model's endpoint outlives its deployments: the idle sweep deletes only what bills (the deployment) and the
model is *asleep*. The first request for an asleep model starts exactly one redeploy of its last live run:
`Lifecycle.redeploy` is a compare-and-set on the run's row, so of fifty concurrent requests one wins and the
others find the run deploying. Every request then holds, reading the ledger, until the run is live (forward),
its deployment failed (503, do not retry: the rollback sent the one alert) or the hold ran out (503 with the
retry headers). The hold is FRONT_HOLD, shortened by a client's `X-Scale-Up-Timeout: N` (0: answer at once).

A request that reaches a model is activity: written to the ledger at once, at most once a minute per model,
for the sweep to read beside the platform's own metrics. The live deployment of each model is remembered for
a few seconds, so a busy model costs the ledger one read per few seconds rather than one per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.front.errors import Refusal
from shared.front.keys import EVERY_PROJECT, grant, presented
from shared.lifecycle import Lifecycle
from shared.platforms.port import NotFoundError, PlatformError, RequestRefused
from shared.projects import ProjectNameError, endpoint_of, project_views
from shared.runs import Conflict, IllegalTransition, Run, State
from shared.settings import Settings

log = logging.getLogger(__name__)

ROUTE_TTL_S = 5.0  # how long a model's live deployment is trusted without reading the ledger again
ACTIVITY_EVERY_S = 60.0  # at most one activity write per model in this long
POLL_S = 0.25  # how often a held request reads the ledger
SCALE_UP_HEADER = "x-scale-up-timeout"
WAKEABLE = frozenset({State.TORN_DOWN, State.UNHEALTHY})
T = TypeVar("T")


def endpoint_for(settings: Settings, model: str) -> str | None:
    """The endpoint serving `model` (a project's name), or None for a name no project can have.

    The one place a model name becomes an endpoint (shared/projects.py: each project has its own).
    """
    try:
        return endpoint_of(settings, model)
    except ProjectNameError:
        return None


@dataclass(frozen=True)
class _Route:
    endpoint: str
    deployment: str
    until: float


class FrontDoor:
    """The front door over one lifecycle (its ledger, platform and settings) and one key."""

    def __init__(self, life: Lifecycle, key: str, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, poll_s: float = POLL_S) -> None:
        self.life = life
        self.settings = life.ctx.settings
        self._key = key
        self._clock = clock
        self._sleep = sleep
        self._poll_s = poll_s
        self._routes: dict[str, _Route] = {}
        self._touched: dict[str, float] = {}
        self._read: dict[str, tuple[float, list[Run]]] = {}
        self._lock = threading.Lock()

    def authorize(self, headers: Mapping[str, str]) -> str:
        """What the request's key opens (`headers` keys lower-case): EVERY_PROJECT for the install's key, a
        project's name for that project's key (`autopilot key PROJECT`); Refusal(401) for anything else."""
        scope = grant(presented(headers), self._key)
        if scope is None:
            raise Refusal(401, "invalid_api_key", "missing or wrong key: send 'Authorization: Bearer KEY' "
                          "(`autopilot key` prints it)")
        return scope

    def hold_for(self, headers: Mapping[str, str]) -> float:
        """Seconds to hold a request for a waking model: FRONT_HOLD, or less if the client asks (≥ 0)."""
        hold = self.settings.front_hold.total_seconds()
        raw = headers.get(SCALE_UP_HEADER, "").strip()
        try:
            return max(0.0, min(hold, float(raw))) if raw else hold
        except ValueError:
            raise Refusal(400, "invalid_header", f"{SCALE_UP_HEADER} must be a number of seconds") from None

    def models(self, scope: str = EVERY_PROJECT) -> dict[str, Any]:
        """GET /v1/models: every project (model) the key opens, asleep or awake, with its state (live,
        asleep, training, failing, never deployed) and live model version. Reads the whole ledger: a list
        of models is asked for rarely, unlike a chat."""
        views = project_views(self.settings, self.life.ledger.all())
        return {"object": "list", "data": [
            {"id": view.name, "object": "model", "created": 0, "owned_by": "finetune-autopilot",
             "state": view.state, "live_version": view.live_version or None, "training": view.training}
            for view in views if view.endpoint and scope in (EVERY_PROJECT, view.name)]}

    def chat(self, request: Mapping[str, Any], hold_s: float, scope: str = EVERY_PROJECT) -> dict[str, Any]:
        """A chat completion from the model `request["model"]` names, waking it first if it is asleep."""
        return self._forward(_model(request), hold_s,
                             lambda ep, dep: self.life.platform.chat(ep, dep, request), scope)

    def chat_stream(self, request: Mapping[str, Any], hold_s: float,
                    scope: str = EVERY_PROJECT) -> Iterator[str]:
        """The same as server-sent events; errors before the first event are Refusals, as for `chat`."""
        return self._forward(_model(request), hold_s,
                             lambda ep, dep: self.life.platform.chat_stream(ep, dep, request), scope)

    def score(self, model: str, payload: Mapping[str, Any], hold_s: float, scope: str = EVERY_PROJECT) -> Any:
        """The seed's scoring payload, to the model's live deployment."""
        return self._forward(model, hold_s, lambda ep, dep: self.life.platform.score(ep, payload, dep), scope)

    def _forward(self, model: str, hold_s: float, call: Callable[[str, str], T], scope: str) -> T:
        if scope not in (EVERY_PROJECT, model):  # another project's key: as if the model did not exist
            raise Refusal(404, "model_not_found", f"the model {model!r} does not exist for this key; GET "
                          "/v1/models lists the models it opens")
        for attempt in range(2):
            endpoint, deployment = self._target(model, hold_s)
            try:
                answer = call(endpoint, deployment)
            except NotFoundError:
                self._forget(model)
                if attempt == 0:  # it fell asleep since the route was read: read the ledger again
                    continue
                raise Refusal(503, "model_not_ready", f"model {model} is not answering yet; try again",
                              self._retry_after(), True) from None
            except RequestRefused as exc:
                raise Refusal(400, "invalid_request", str(exc)) from None
            except PlatformError as exc:
                self._forget(model)
                raise Refusal(503, "model_unavailable", f"model {model} did not answer: {str(exc)[:300]}",
                              self._retry_after(), True) from None
            self._touch(endpoint)
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _target(self, model: str, hold_s: float) -> tuple[str, str]:
        """The model's live (endpoint, deployment), waking it and holding up to `hold_s` if it is asleep."""
        endpoint = endpoint_for(self.settings, model)
        if endpoint is None:
            raise Refusal(404, "model_not_found", f"the model {model!r} does not exist; GET /v1/models lists "
                          "the models")
        with self._lock:
            route = self._routes.get(model)
        if route is not None and route.until > self._clock():
            return route.endpoint, route.deployment
        deadline = self._clock() + hold_s
        while True:
            runs = self._runs(endpoint)
            live = [r for r in runs if r.state == State.LIVE and r.deployment]
            if live:
                serving = max(live, key=_last_live)
                with self._lock:
                    self._routes[model] = _Route(endpoint, serving.deployment, self._clock() + ROUTE_TTL_S)
                return endpoint, serving.deployment
            if not any(r.state == State.DEPLOYING for r in runs):
                self._wake_or_refuse(model, runs)
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise Refusal(503, "model_not_ready", f"model {model} is waking up (its deployment is being "
                              "created); try again shortly", self._retry_after(), True)
            self._sleep(min(self._poll_s, remaining))

    def _runs(self, endpoint: str) -> list[Run]:
        """The endpoint's runs, read at most once a poll interval however many requests hold for it."""
        now = self._clock()
        with self._lock:
            read = self._read.get(endpoint)
        if read is not None and now - read[0] < self._poll_s:
            return read[1]
        runs = self.life.ledger.find(endpoint=endpoint)
        with self._lock:
            self._read[endpoint] = (now, runs)
        return runs

    def _wake_or_refuse(self, model: str, runs: list[Run]) -> None:
        """Start the one redeploy of the model's last live run, or say why it cannot wake."""
        ever_live = [r for r in runs if _last_live(r)]
        if not ever_live:
            raise Refusal(404, "model_not_found", f"model {model} has no version that went live yet")
        last = max(ever_live, key=_last_live)
        if last.state in WAKEABLE and last.model_name:
            try:
                woken = self.life.redeploy(last, wake=True)
            except (Conflict, IllegalTransition):
                return  # another request woke it first: hold like everyone else
            log.info("front door: model %s woken: run %s redeploys %s:%s (wake %d)", model, woken.run_id,
                     woken.model_name, woken.model_version, woken.wakes)
            return
        if last.state == State.ROLLED_BACK:
            raise Refusal(503, "model_wake_failed", f"model {model} could not be woken: "
                          f"{last.error[:500]}; an operator's redeploy of run {last.run_id} brings it back",
                          None, False)
        raise Refusal(503, "model_unavailable", f"model {model} is {last.state}", self._retry_after(), True)

    def _touch(self, endpoint: str) -> None:
        """Record the request as the endpoint's activity, at most once a minute (a failed write is logged)."""
        now = self._clock()
        with self._lock:
            if now - self._touched.get(endpoint, float("-inf")) < ACTIVITY_EVERY_S:
                return
            self._touched[endpoint] = now
        try:
            self.life.ledger.activity.mark(endpoint, self.life.ledger.now())
        except Exception:  # the answer matters more than the idle signal; the platform's metrics remain
            log.warning("front door: could not record activity on %s", endpoint, exc_info=True)

    def _forget(self, model: str) -> None:
        with self._lock:
            self._routes.pop(model, None)

    def _retry_after(self) -> float:
        """A deployment's state is read again every DEPLOY_POLL_INTERVAL: no sooner is news likely."""
        return self.settings.deploy_poll_interval.total_seconds()


def _model(request: Mapping[str, Any]) -> str:
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise Refusal(400, "invalid_request", "'model' must name a model (GET /v1/models lists them)")
    return model


def _last_live(run: Run) -> str:
    """When the run last went live (ISO time, '' if never): the latest such run is the model's last live."""
    times = [entry.get("at", "") for entry in run.history if entry.get("state") == State.LIVE.value]
    return max(times, default="")
