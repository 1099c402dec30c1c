"""When an endpoint last served a request: Azure Monitor's RequestsPerMinute, per minute, newest non-zero.

azure-monitor-query 2.x removed MetricsQueryClient; the batch API (`MetricsClient.query_resources`) of
azure-monitor-querymetrics is the one left. It is regional: the client follows the endpoint's location.
Azure's supported-metrics reference lists RequestsPerMinute (Count, PT1M) with the Average aggregation only,
so that is the one asked for; a minute without requests comes back as a point without a value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.platforms.port import ActivityUnavailable

NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
METRIC = "RequestsPerMinute"
AGGREGATION = "Average"


def last_request(metrics_for_region: Callable[[str], Any], endpoint: Any, now: datetime,
                 lookback: timedelta, created_at: datetime | None, ttl: timedelta) -> datetime | None:
    """The start of the newest minute with requests in the last `lookback`, or None if none.

    Raises ActivityUnavailable (the sweep then keeps the endpoint) if the metric cannot be read, or if it has
    no data at all while the endpoint is not yet older than `ttl`: metrics reach Azure Monitor minutes late,
    so only an endpoint that has existed longer than the TTL can be called idle on an empty series.
    """
    if not endpoint.id or not endpoint.location:
        raise ActivityUnavailable(f"endpoint {endpoint.name} has no resource id or location for metrics")
    try:
        results = metrics_for_region(endpoint.location).query_resources(
            resource_ids=[endpoint.id],
            metric_namespace=NAMESPACE,
            metric_names=[METRIC],
            timespan=(now - lookback, now),
            granularity=timedelta(minutes=1),
            aggregations=[AGGREGATION],
        )
    except Exception as error:
        raise ActivityUnavailable(
            f"could not read {METRIC} of endpoint {endpoint.name} ({type(error).__name__}); the identity "
            "needs 'Monitoring Reader' on the workspace") from error
    points = [point for result in results for metric in result.metrics for series in metric.timeseries
              for point in series.data if point.average is not None]
    if points:
        busy = [p.timestamp for p in points if p.average > 0]
        return max(busy, default=None)
    if created_at is None or now - created_at <= ttl:
        raise ActivityUnavailable(
            f"Azure Monitor has no {METRIC} data for endpoint {endpoint.name} yet and it is not older than "
            f"IDLE_TTL ({ttl}); it counts as in use until its metrics arrive or it is older than that")
    return None
