"""Endpoint activity at the wire: MetricsClient.query_resources against the fake's metrics batch API.

The fake counts RequestsPerMinute from the requests the endpoint really served and refuses a query as Azure
Monitor does (an aggregation the metric does not support is a 400), so the points the adapter reads are the
SDK's own parsing of a real-shaped response.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.platforms.azureml.activity import AGGREGATION, METRIC, NAMESPACE
from shared.platforms.port import ActivityUnavailable, NotFoundError
from tests.fakes.azureml_world import NOW, World, build_world
from tests.fakes.wire.grants import infra_grants
from tests.fakes.wire.ids import LOCATION
from tests.fakes.wire.world import AzureWire
from tests.unit.test_azureml_endpoints import trained

PAYLOAD = {"input_data": {"input_string": [{"role": "user", "content": "hi"}]}}


def serving(world: World) -> str:
    """A deployed endpoint with all traffic on blue; its ARM id."""
    world.deployed(trained(world), "chats-ep", "blue")
    world.platform.set_traffic("chats-ep", {"blue": 100})
    return str(world.wire.endpoints.endpoints["chats-ep"]["id"])


def test_last_request_is_the_minute_of_the_newest_request() -> None:
    world = build_world()
    resource = serving(world)
    world.later(minutes=10, seconds=20)
    world.platform.score("chats-ep", PAYLOAD)
    world.later(minutes=20)
    world.platform.score("chats-ep", PAYLOAD)
    world.platform.score("chats-ep", PAYLOAD)
    world.later(minutes=30)
    assert world.platform.endpoint_activity("chats-ep") == NOW + timedelta(minutes=30)
    (query,) = world.wire.monitor.queries
    assert query.host == f"{LOCATION}.metrics.monitor.azure.com"  # the endpoint's region: the API is regional
    assert query.body == {"resourceids": [resource]}
    assert query.query["metricnamespace"] == NAMESPACE and query.query["metricnames"] == METRIC
    assert query.query["aggregation"] == AGGREGATION == "Average" and query.query["interval"] == "PT1M"
    start = world.clock.now - timedelta(hours=4)  # twice the default 2 h IDLE_TTL
    assert query.query["starttime"].startswith(start.strftime("%Y-%m-%dT%H:%M"))


def test_total_is_refused_by_azure_monitor_for_this_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the adapter asked before: Azure's supported-metrics list has Average only for RequestsPerMinute.
    world = build_world()
    serving(world)
    monkeypatch.setattr("shared.platforms.azureml.activity.AGGREGATION", "Total")
    with pytest.raises(ActivityUnavailable, match="HttpResponseError") as refused:
        world.platform.endpoint_activity("chats-ep")
    cause = refused.value.__cause__
    assert getattr(cause, "status_code", None) == 400 and "Average" in str(cause)


def test_an_empty_series_is_unknown_while_the_endpoint_is_young_and_idle_once_older_than_the_ttl() -> None:
    world = build_world(IDLE_TTL="2h")
    serving(world)
    world.later(minutes=30)  # no request yet, and metrics may still be on their way
    with pytest.raises(ActivityUnavailable, match="IDLE_TTL"):
        world.platform.endpoint_activity("chats-ep")
    world.later(hours=2)
    assert world.platform.endpoint_activity("chats-ep") is None


def test_no_request_within_the_window_is_none() -> None:
    world = build_world(IDLE_TTL="1h")
    serving(world)
    world.platform.score("chats-ep", PAYLOAD)
    world.later(hours=3)  # the request is older than the 2 h lookback: the series is there, all empty
    assert world.platform.endpoint_activity("chats-ep") is None


def test_without_monitoring_reader_the_query_is_403_and_the_activity_unavailable() -> None:
    grants = [g for g in infra_grants() if g.role.name != "Monitoring Reader"]
    wire = AzureWire(grants=grants)
    world = build_world(wire=wire)
    serving(world)
    with pytest.raises(ActivityUnavailable, match="Monitoring Reader"):
        world.platform.endpoint_activity("chats-ep")
    (denied,) = world.wire.transport.denied
    assert denied.host.endswith(".metrics.monitor.azure.com")


def test_activity_of_a_missing_endpoint_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        build_world().platform.endpoint_activity("nope")
