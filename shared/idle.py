"""The idle rules: when an endpoint counts as idle, and which idle endpoints a sweep takes down.

Pure functions of what the platform reports, so the sweep (shared/lifecycle/sweep.py), the status page
(shared/ops/views.py) and the teardown benchmark all judge by the same lines. A module of its own, light to
import: the CLI's status view must not pull in the handlers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.platforms.port import KEEP_TAG, MANAGED_TAG, EndpointInfo


@dataclass(frozen=True)
class IdleVerdict:
    """The sweep's decision for one endpoint, and why."""

    endpoint: str
    delete: bool
    reason: str
    idle_for: timedelta | None = None
    # How long until the sweep takes it down as things stand (0: now); None: not as things stand (kept,
    # asleep for ever, deploying, or no time known). The status page shows it.
    teardown_in: timedelta | None = None


def idle_since(endpoint: EndpointInfo, last_request: datetime | None) -> datetime | None:
    """When the endpoint last did something: the later of its last request and its newest deployment.

    Counting from the deployment gives a fresh (re)deployment its grace period; None if nothing is known.
    """
    marks = [t for t in (last_request, endpoint.last_deployed_at, endpoint.created_at) if t is not None]
    return max(marks) if marks else None


def asleep(endpoint: EndpointInfo) -> bool:
    """The endpoint has no deployment: nothing bills, its URL and keys stay, the front door can wake it."""
    return not endpoint.deployments


def judge(endpoint: EndpointInfo, last_request: datetime | None, now: datetime,
          ttl: timedelta, delete_after: timedelta | None = None, *, deploying: bool = False) -> IdleVerdict:
    """The decision for one endpoint whose activity is known: for an awake one, whether to put it to sleep
    (delete its deployments) after `ttl`; for an asleep one, whether to delete it after `delete_after`
    (None or 0: never). The keep tag keeps it; `deploying` (a run is deploying to it and still moving)
    keeps it too. The sweep and the status page both ask here."""
    if endpoint.tags.get(MANAGED_TAG) != "true":
        return IdleVerdict(endpoint.name, False, "not managed by autopilot")
    if endpoint.tags.get(KEEP_TAG, "").lower() == "true":
        return IdleVerdict(endpoint.name, False, f"{KEEP_TAG}=true")
    if asleep(endpoint):
        if not delete_after:
            return IdleVerdict(endpoint.name, False, "asleep (no deployment bills); kept")
        ttl = delete_after
    since = idle_since(endpoint, last_request)
    if since is None:
        return IdleVerdict(endpoint.name, False, "no deployment or request time known")
    idle_for = now - since
    if idle_for <= ttl:
        return IdleVerdict(endpoint.name, False, "asleep, within ENDPOINT_DELETE_AFTER" if asleep(endpoint)
                           else "active within the TTL", idle_for, ttl - idle_for)
    if deploying:
        return IdleVerdict(endpoint.name, False, "a deployment to it is in progress", idle_for)
    return IdleVerdict(endpoint.name, True, f"idle for {idle_for} > {ttl}", idle_for, timedelta(0))


def select(verdicts: Iterable[IdleVerdict],
           max_deletions: int) -> tuple[list[IdleVerdict], list[IdleVerdict]]:
    """Split the delete verdicts into this sweep's deletions (longest idle first, at most `max_deletions`)
    and those deferred to the next sweep."""
    idle = sorted((v for v in verdicts if v.delete), key=lambda v: v.idle_for or timedelta(0), reverse=True)
    return idle[:max_deletions], idle[max_deletions:]
