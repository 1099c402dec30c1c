"""What the steps begin on Azure ML is begun, not watched: after the call returns, nothing polls ARM.

azure-ai-ml's `begin_*` hands each request to an LROPoller whose daemon thread keeps polling (every 5 s on
Azure, at once here: the fake transport does not sleep) and prints '.' per poll. The adapter starts these
operations without one: no request after it returns, no thread left, nothing on stdout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from shared.platforms.azureml import endpoints
from shared.platforms.port import Provisioning
from tests.fakes.azureml_world import World, build_world
from tests.unit.test_azureml_endpoints import settle, trained

# Long enough for a poller thread (which the fake never makes wait) to send its polls.
QUIET = 0.3


def begun(world: World, start: Callable[[], object], capsys: pytest.CaptureFixture[str]) -> int:
    """Run `start`; assert it left no thread, sent nothing after it returned and printed nothing. Returns how
    many requests it sent."""
    capsys.readouterr()
    threads = set(threading.enumerate())
    senders: list[str] = []
    transport, send = world.wire.transport, world.wire.transport.send

    def noting(request: object, **kwargs: object) -> object:
        senders.append(threading.current_thread().name)
        return send(request, **kwargs)

    transport.send = noting  # type: ignore[method-assign,assignment]
    before = len(transport.requests)
    try:
        start()
        returned = len(transport.requests)
        left = set(threading.enumerate()) - threads
        time.sleep(QUIET)
    finally:
        del transport.send
    # A poller's thread may finish its polls before the call returns: who sent each request says it all.
    assert set(senders) == {threading.current_thread().name}, senders
    assert len(world.wire.transport.requests) == returned, [
        f"{r.method} {r.path}" for r in world.wire.transport.requests[returned:]]
    assert not left, f"threads left behind: {left}"
    assert capsys.readouterr().out == ""
    return returned - before


def test_begin_deployment_sends_its_put_and_leaves_nothing_polling(
        capsys: pytest.CaptureFixture[str]) -> None:
    world = build_world()
    ref = trained(world)
    begun(world, lambda: world.platform.begin_deployment(ref, "chats-ep", "blue", {}), capsys)  # endpoint
    assert world.wire.endpoints.endpoints["chats-ep"]["properties"]["provisioningState"] == "Creating"
    settle(world)
    begun(world, lambda: world.platform.begin_deployment(ref, "chats-ep", "blue", {}), capsys)  # deployment
    assert world.wire.endpoints.created_deployments == [("chats-ep", "blue")]
    assert world.platform.deployment_status("chats-ep", "blue").provisioning == Provisioning.CREATING
    polled = world.wire.operations.polls
    settle(world)  # the service goes on without anyone asking
    assert world.platform.deployment_status("chats-ep", "blue").succeeded
    assert world.wire.operations.polls == polled  # and nobody asked the operation


def test_deletes_are_begun_and_leave_nothing_polling(capsys: pytest.CaptureFixture[str]) -> None:
    world = build_world()
    ref = trained(world)
    world.deployed(ref, "chats-ep", "blue")
    begun(world, lambda: world.platform.delete_deployment("chats-ep", "blue"), capsys)
    assert world.wire.endpoints.deployments[("chats-ep", "blue")]["properties"]["provisioningState"] == \
        "Deleting"
    begun(world, lambda: world.platform.delete_endpoint("chats-ep"), capsys)
    assert world.platform.get_endpoint("chats-ep") is None  # going counts as gone
    settle(world)
    assert world.wire.endpoints.endpoints == {} and world.wire.endpoints.deployments == {}


def test_a_traffic_switch_reads_the_endpoint_a_bounded_number_of_times(
        capsys: pytest.CaptureFixture[str]) -> None:
    world = build_world()
    ref = trained(world)
    world.deployed(ref, "chats-ep", "blue")
    sent = begun(world, lambda: world.platform.set_traffic("chats-ep", {"blue": 100}), capsys)
    assert world.platform.get_endpoint("chats-ep").traffic == {"blue": 100}  # type: ignore[union-attr]
    assert sent <= 3 + endpoints.TRAFFIC_READS  # workspace, GET, PUT, then its reads


def test_a_traffic_switch_that_does_not_settle_gives_up_transiently_then_resumes_without_a_second_put(
) -> None:
    world = build_world()
    ref = trained(world)
    world.deployed(ref, "chats-ep", "blue")
    world.wire.operations.work = lambda: None  # type: ignore[method-assign]  # the service stalls
    with pytest.raises(endpoints.TrafficNotSettled, match="still updating"):
        world.platform.set_traffic("chats-ep", {"blue": 100})
    puts = [r for r in world.wire.transport.requests if r.method == "PUT" and r.path.endswith("/chats-ep")]
    del world.wire.operations.work  # the service moves again
    world.platform.set_traffic("chats-ep", {"blue": 100})
    assert [r for r in world.wire.transport.requests
            if r.method == "PUT" and r.path.endswith("/chats-ep")] == puts  # no second PUT
    assert world.platform.get_endpoint("chats-ep").traffic == {"blue": 100}  # type: ignore[union-attr]
