"""Endpoint activity from Azure Monitor's RequestsPerMinute (MetricsClient.query_resources)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError

from shared.platforms.port import ActivityUnavailable, NotFoundError
from tests.fakes.azureml_world import NOW, World, build_world
from tests.unit.test_azureml_endpoints import trained


def deployed(world: World) -> str:
    world.platform.deploy(trained(world), "chats-ep", "blue", {})
    return str(world.ml.online_endpoints.get("chats-ep").id)


def test_last_request_is_the_newest_minute_with_requests() -> None:
    world = build_world()
    resource = deployed(world)
    world.metrics.add(resource, "RequestsPerMinute", NOW - timedelta(minutes=90), 3)
    world.metrics.add(resource, "RequestsPerMinute", NOW - timedelta(minutes=30), 1)
    world.metrics.add(resource, "RequestsPerMinute", NOW - timedelta(minutes=5), 0)
    assert world.platform.endpoint_activity("chats-ep") == NOW - timedelta(minutes=30)
    (query,) = world.metrics.queries
    assert query["resource_ids"] == [resource] and query["metrics"] == ["RequestsPerMinute"]
    assert query["namespace"] == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
    assert query["granularity"] == timedelta(minutes=1) and query["aggregations"] == ["Total"]
    assert query["timespan"] == (NOW - timedelta(hours=4), NOW)  # twice the default 2 h idle TTL


def test_no_requests_in_the_window_is_none() -> None:
    world = build_world()
    resource = deployed(world)
    world.metrics.add(resource, "RequestsPerMinute", NOW - timedelta(days=3), 5)
    assert world.platform.endpoint_activity("chats-ep") is None


def test_unreadable_metrics_are_activity_unavailable() -> None:
    world = build_world()
    deployed(world)
    world.metrics.fail_with = HttpResponseError(message="AuthorizationFailed")
    with pytest.raises(ActivityUnavailable, match="Monitoring Reader"):
        world.platform.endpoint_activity("chats-ep")


def test_activity_of_a_missing_endpoint_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        build_world().platform.endpoint_activity("nope")
