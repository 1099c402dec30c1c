"""The endpoint lease: deploys to one endpoint take turns (deploy → gate → traffic → delete old, one run at a
time), so concurrent runs cannot delete or out-switch each other's deployments.

One row per endpoint (kind "endpoint" beside the runs, same compare-and-set) names the run holding it and
until when. The lease holds only while its holder is still on its way to live (registered or deploying) and
its time has not run out; a holder that ended (live, rolled back, failed) or died frees it without having to
let go, so no crash can lock an endpoint. The row also remembers which endpoint alerts were sent, so an
endpoint with no run to carry them is alerted once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.runs.port import Conflict, Row, RowExists, RowStore
from shared.runs.record import Run, State

KIND = "endpoint"
_HOLDING = frozenset({State.REGISTERED, State.DEPLOYING})


@dataclass(frozen=True)
class EndpointLease:
    endpoint: str
    holder: str
    until: datetime | None
    alerts: tuple[str, ...]
    etag: str | None


class EndpointLeases:
    """Take and read endpoint leases over the ledger's row store (`runs` reads a holder's run)."""

    def __init__(self, store: RowStore, runs: Callable[[str], Run | None],
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self._runs = runs
        self._clock = clock

    def get(self, endpoint: str) -> EndpointLease | None:
        row = self.store.get(KIND, endpoint)
        if row is None:
            return None
        until = row.columns.get("until", "")
        return EndpointLease(endpoint, row.columns.get("holder", ""),
                             datetime.fromisoformat(until) if until else None,
                             tuple(json.loads(row.columns.get("alerts", "[]"))), row.etag)

    def holder(self, endpoint: str) -> str | None:
        """The run holding the endpoint now, or None if it is free."""
        lease = self.get(endpoint)
        return lease.holder if lease is not None and self._holds(lease) else None

    def take(self, endpoint: str, run_id: str, ttl: timedelta) -> str | None:
        """Take (or renew) the endpoint for `run_id` for `ttl`; None if taken, else the run holding it."""
        for _ in range(5):  # a lost compare-and-set: someone else wrote first; look again
            lease = self.get(endpoint)
            if lease is not None and lease.holder != run_id and self._holds(lease):
                return lease.holder
            columns = {"holder": run_id, "until": (self._clock() + ttl).isoformat(),
                       "alerts": json.dumps(list(lease.alerts) if lease else [])}
            try:
                if lease is None:
                    self.store.insert(Row(KIND, endpoint, columns))
                else:
                    self.store.replace(Row(KIND, endpoint, columns, lease.etag))
                return None
            except (RowExists, Conflict):
                continue
        return self.holder(endpoint) or "another run (the lease kept changing)"

    def mark_alerted(self, endpoint: str, alert_class: str) -> bool:
        """Record that the endpoint's alert of this class was sent; False if it already was."""
        for _ in range(5):
            lease = self.get(endpoint)
            if lease is not None and alert_class in lease.alerts:
                return False
            columns = {"holder": lease.holder if lease else "",
                       "until": lease.until.isoformat() if lease and lease.until else "",
                       "alerts": json.dumps([*(lease.alerts if lease else ()), alert_class])}
            try:
                if lease is None:
                    self.store.insert(Row(KIND, endpoint, columns))
                else:
                    self.store.replace(Row(KIND, endpoint, columns, lease.etag))
                return True
            except (RowExists, Conflict):
                continue
        return False

    def _holds(self, lease: EndpointLease) -> bool:
        if not lease.holder or lease.until is None or lease.until <= self._clock():
            return False
        holder = self._runs(lease.holder)
        return holder is not None and holder.state in _HOLDING
