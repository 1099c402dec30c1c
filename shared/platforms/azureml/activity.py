"""When an endpoint last served a request: Azure Monitor's RequestsPerMinute, per minute, newest non-zero.

azure-monitor-query 2.x removed MetricsQueryClient; the batch API (`MetricsClient.query_resources`) of
azure-monitor-querymetrics is the one left. It is regional: the client follows the endpoint's location.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.platforms.port import ActivityUnavailable

NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
METRIC = "RequestsPerMinute"


def last_request(metrics_for_region: Callable[[str], Any], endpoint: Any, now: datetime,
                 lookback: timedelta) -> datetime | None:
    """The start of the newest minute with requests in the last `lookback`, or None if none.

    Raises ActivityUnavailable if the metric cannot be read, so the sweep treats the endpoint as in use.
    """
    if not endpoint.id or not endpoint.location:
        raise ActivityUnavailable(f"endpoint {endpoint.name} has no resource id or location for metrics")
    try:
        client = metrics_for_region(endpoint.location)
        results = client.query_resources(
            resource_ids=[endpoint.id],
            metric_namespace=NAMESPACE,
            metric_names=[METRIC],
            timespan=(now - lookback, now),
            granularity=timedelta(minutes=1),
            aggregations=["Total"],
        )
    except Exception as error:
        raise ActivityUnavailable(
            f"could not read {METRIC} of endpoint {endpoint.name} ({type(error).__name__}); the identity "
            "needs 'Monitoring Reader' on the workspace") from error
    newest: datetime | None = None
    for result in results:
        for metric in result.metrics:
            for series in metric.timeseries:
                for point in series.data:
                    if (point.total or 0) > 0 and (newest is None or point.timestamp > newest):
                        newest = point.timestamp
    return newest
