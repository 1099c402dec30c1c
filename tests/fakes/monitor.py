"""Fake Azure Monitor MetricsClient: query_resources over per-minute points, in the SDK's models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from azure.monitor.querymetrics import Metric, MetricsQueryResult, MetricValue, TimeSeriesElement


class FakeMetricsClient:
    """Holds (resource id, metric) → [(minute, total)]; `fail_with` makes every query raise it."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, str], list[tuple[datetime, float]]] = {}
        self.queries: list[dict[str, Any]] = []
        self.fail_with: Exception | None = None

    def add(self, resource_id: str, metric: str, minute: datetime, total: float) -> None:
        self.points.setdefault((resource_id, metric), []).append((minute, total))

    def query_resources(self, *, resource_ids: Sequence[str], metric_namespace: str,
                        metric_names: Sequence[str], timespan: tuple[datetime, datetime] | None = None,
                        granularity: timedelta | None = None, aggregations: Sequence[str] | None = None,
                        **_: Any) -> list[MetricsQueryResult]:
        self.queries.append({"resource_ids": list(resource_ids), "namespace": metric_namespace,
                             "metrics": list(metric_names), "timespan": timespan, "granularity": granularity,
                             "aggregations": list(aggregations or [])})
        if self.fail_with is not None:
            raise self.fail_with
        start, end = timespan if timespan else (datetime.min, datetime.max)
        results = []
        for resource in resource_ids:
            metrics = []
            for name in metric_names:
                data = [MetricValue(timestamp=t, total=v) for t, v in self.points.get((resource, name), [])
                        if start <= t <= end]
                metrics.append(Metric(id=f"{resource}/providers/Microsoft.Insights/metrics/{name}",
                                      type="Microsoft.Insights/metrics", name=name, unit="Count",
                                      timeseries=[TimeSeriesElement(metadata_values={}, data=data)],
                                      display_description=""))
            results.append(MetricsQueryResult(timespan=f"{start}/{end}", granularity=granularity,
                                              namespace=metric_namespace, metrics=metrics))
        return results
