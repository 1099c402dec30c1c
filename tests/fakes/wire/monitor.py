"""Azure Monitor's regional metrics batch API: POST https://{region}.metrics.monitor.azure.com/subscriptions/
{sub}/metrics:getBatch, the call MetricsClient.query_resources makes.

RequestsPerMinute is counted from the requests the endpoints really served (`scoring.py`), per minute and
visible after `lag` (Azure Monitor's ingestion delay). A query is refused as the service refuses it: an
aggregation the metric does not support (data/supported_metrics.json), a resource outside the host's region,
a grain the metric does not have. A minute without requests is a point with only its timeStamp; a resource
that never emitted the metric has no timeseries at all.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import isodate

from tests.fakes.wire.http import Reply, WireRequest, WireTransport, arm_error, ok
from tests.fakes.wire.ids import LOCATION
from tests.fakes.wire.scoring import Scoring

SUPPORTED = json.loads((Path(__file__).parent / "data" / "supported_metrics.json")
                       .read_text(encoding="utf-8"))


class Monitor:
    # Platform metrics typically reach Azure Monitor 1-3 minutes after the minute they count.
    def __init__(self, scoring: Scoring, lag: timedelta = timedelta(minutes=3)) -> None:
        self.scoring = scoring
        self.lag = lag
        self.queries: list[WireRequest] = []

    def mount(self, wire: WireTransport) -> None:
        wire.route("POST", r"(?P<region>[a-z0-9]+)\.metrics\.monitor\.azure\.com/subscriptions/[^/]+"
                           r"/metrics:getBatch", self.get_batch)

    def get_batch(self, request: WireRequest, match: re.Match[str]) -> Reply:
        self.queries.append(request)
        query = request.query
        namespace = query.get("metricnamespace", "")
        metrics = SUPPORTED.get(namespace) or {}
        names = [n for n in query.get("metricnames", "").split(",") if n]
        wanted = {a.strip().lower() for a in query.get("aggregation", "").split(",") if a.strip()}
        for name in names:
            if name not in metrics:
                return arm_error(400, "BadRequest", f"metric {name} is not a metric of {namespace}")
            supported = {a.lower() for a in metrics[name]["aggregations"]}
            if not wanted <= supported:
                return arm_error(400, "BadRequest", f"aggregation {sorted(wanted - supported)} is not "
                                 f"supported for metric {name}; supported: {metrics[name]['aggregations']}")
            if query.get("interval") and query["interval"] not in metrics[name]["timeGrains"]:
                return arm_error(400, "BadRequest", f"interval {query['interval']} is not a grain of {name}")
        if match["region"] != LOCATION:
            return arm_error(400, "BadRequest", f"resources in {LOCATION} must be queried at {LOCATION}, not "
                          f"{match['region']}")
        start, end = (datetime.fromisoformat(query[k].replace("Z", "+00:00"))
                      for k in ("starttime", "endtime"))
        grain = isodate.parse_duration(query.get("interval") or "PT1M")
        values = [self._resource(rid, namespace, names, start, end, grain, wanted)
                  for rid in (request.body or {}).get("resourceids", [])]
        return ok({"values": values})

    def _resource(self, resource_id: str, namespace: str, names: list[str], start: datetime, end: datetime,
                  grain: timedelta, aggregations: set[str]) -> dict[str, Any]:
        endpoint = resource_id.rstrip("/").rsplit("/", 1)[-1]
        visible = self.scoring.clock() - self.lag
        minutes = Counter(_floor(s.at, grain) for s in self.scoring.scored
                          if s.endpoint == endpoint and s.at <= visible)
        metrics = []
        for name in names:
            series: list[dict[str, Any]] = []
            if minutes:
                series.append({"metadatavalues": [], "data": [
                    {"timeStamp": _iso(t), **({a: float(minutes[t]) for a in aggregations} if t in minutes
                                              else {})}
                    for t in _grains(start, end, grain)]})
            metrics.append({"id": f"{resource_id}/providers/Microsoft.Insights/metrics/{name}",
                            "type": "Microsoft.Insights/metrics",
                            "name": {"value": name, "localizedValue": name},
                            "displayDescription": SUPPORTED[namespace][name]["displayDescription"],
                            "unit": SUPPORTED[namespace][name]["unit"], "timeseries": series,
                            "errorCode": "Success"})
        return {"starttime": _iso(start), "endtime": _iso(end), "interval": isodate.duration_isoformat(grain),
                "value": metrics, "namespace": namespace.lower(), "resourceregion": LOCATION,
                "resourceid": resource_id}


def _floor(moment: datetime, grain: timedelta) -> datetime:
    seconds = int(grain.total_seconds())
    epoch = int(moment.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def _grains(start: datetime, end: datetime, grain: timedelta) -> list[datetime]:
    moment, found = _floor(start, grain), []
    while moment < end:
        found.append(moment)
        moment += grain
    return found


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
