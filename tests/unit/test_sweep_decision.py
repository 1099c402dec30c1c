"""The idle sweep's decision: TTL from the later of last request and deployment; tags protect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.idle import idle_since, judge, select
from shared.platforms.port import KEEP_TAG, MANAGED_TAG, EndpointInfo

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=2)


def endpoint(deployed_hours_ago: float, **tags: str) -> EndpointInfo:
    at = NOW - timedelta(hours=deployed_hours_ago)
    return EndpointInfo("ep", {MANAGED_TAG: "true", **tags}, at, {"d": 100}, ("d",), last_deployed_at=at)


def test_idle_past_ttl_is_deleted() -> None:
    assert judge(endpoint(5), NOW - timedelta(hours=3), NOW, TTL).delete


def test_recent_request_keeps_it() -> None:
    assert not judge(endpoint(5), NOW - timedelta(minutes=30), NOW, TTL).delete


def test_fresh_deployment_gets_a_grace_period_even_without_requests() -> None:
    assert not judge(endpoint(1), None, NOW, TTL).delete
    assert judge(endpoint(3), None, NOW, TTL).delete


def test_keep_tag_and_unmanaged_endpoints_are_never_deleted() -> None:
    assert not judge(endpoint(50, **{KEEP_TAG: "true"}), None, NOW, TTL).delete
    unmanaged = EndpointInfo("theirs", {}, NOW - timedelta(days=9), {}, ())
    assert not judge(unmanaged, None, NOW, TTL).delete


def test_exactly_ttl_idle_is_kept_one_second_more_is_not() -> None:
    assert not judge(endpoint(5), NOW - TTL, NOW, TTL).delete
    assert judge(endpoint(5), NOW - TTL - timedelta(seconds=1), NOW, TTL).delete


def test_grace_counts_from_the_newest_deployment_not_the_endpoint() -> None:
    info = EndpointInfo("ep", {MANAGED_TAG: "true"}, NOW - timedelta(days=3), {"green": 100}, ("green",),
                        last_deployed_at=NOW - timedelta(minutes=20))
    verdict = judge(info, NOW - timedelta(days=2), NOW, TTL)
    assert not verdict.delete and verdict.idle_for == timedelta(minutes=20)


def test_keep_tag_is_case_insensitive_and_false_does_not_protect() -> None:
    assert not judge(endpoint(50, **{KEEP_TAG: "True"}), None, NOW, TTL).delete
    assert judge(endpoint(50, **{KEEP_TAG: "false"}), None, NOW, TTL).delete


def test_select_takes_the_longest_idle_first_up_to_the_cap() -> None:
    verdicts = [judge(EndpointInfo(f"ep{h}", {MANAGED_TAG: "true"}, None, {}, ("blue",),
                                   last_deployed_at=NOW - timedelta(hours=h)), None, NOW, TTL)
                for h in (3, 1, 8, 5)]
    chosen, deferred = select(verdicts, 2)
    assert [v.endpoint for v in chosen] == ["ep8", "ep5"]
    assert [v.endpoint for v in deferred] == ["ep3"]  # ep1 is within the TTL: neither


def test_idle_since_is_the_later_of_last_request_and_newest_deployment() -> None:
    deployed = endpoint(5)
    assert idle_since(deployed, None) == NOW - timedelta(hours=5)
    assert idle_since(deployed, NOW - timedelta(hours=1)) == NOW - timedelta(hours=1)
    assert idle_since(deployed, NOW - timedelta(hours=9)) == NOW - timedelta(hours=5)
    assert idle_since(EndpointInfo("ep", {}, None, {}, ()), None) is None
