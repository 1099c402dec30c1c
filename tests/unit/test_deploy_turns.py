"""Hostile paths of deploying (issue 14): an untested model never takes the traffic, a step that dies after
the switch leaves the previous deployment serving, and concurrent runs on one endpoint take turns.

All on the in-memory world (tests/fakes/world.py): the same handlers and step queue as on Azurite, in
milliseconds, with the platform counting every effect.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from shared.runs import State
from tests.fakes.world import SAMPLE, MemoryWorld

LINES = SAMPLE.read_bytes().splitlines(keepends=True)


def world_at(tmp_path: Path, **env: str) -> MemoryWorld:
    return MemoryWorld(tmp_path, SMOKE_CONVERSATIONS="2", **env)


def serving(world: MemoryWorld, endpoint: str) -> list[str]:
    return [d for d, share in world.platform.endpoints[endpoint].traffic.items() if share]


def test_a_run_with_no_test_conversation_is_never_deployed_untested(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    first = world.live_run("first.jsonl")
    second = world.upload("second.jsonl", b"".join(LINES[:30]))
    world.staging.put(world.staging.ref(second.test_uri), b"", "application/jsonl")  # nothing to test on
    world.complete(second)
    after = world.get(second.run_id)
    assert after.state == State.ROLLED_BACK and "no test conversation" in after.error
    assert world.alerts() == ["deploy.smoke_gate_failed"]
    assert world.get(first.run_id).state == State.LIVE
    assert serving(world, first.endpoint) == [first.deployment]
    assert world.queued() == []


def test_a_one_conversation_upload_never_takes_the_endpoint(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    first = world.live_run("first.jsonl")
    one = world.upload("one.jsonl", LINES[0])
    if one.job_name:  # validated (today it is refused at validation: too few rows, no test row)
        world.complete(one)
    assert world.get(one.run_id).state in (State.REJECTED, State.ROLLED_BACK)
    assert world.get(first.run_id).state == State.LIVE
    assert serving(world, first.endpoint) == [first.deployment]
    assert len(world.alerts()) == 1


def test_a_step_dying_after_the_switch_gives_the_traffic_back_with_one_alert(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    first = world.live_run("first.jsonl")
    switch = world.platform.set_traffic

    def switch_then_die(endpoint: str, traffic: Any) -> None:
        switch(endpoint, traffic)
        if first.deployment not in traffic:  # the candidate's switch: the worker dies right after it
            raise RuntimeError("the worker died after the switch")

    world.platform.set_traffic = switch_then_die  # type: ignore[method-assign]
    second = world.upload("second.jsonl", b"".join(LINES[:30]))
    world.complete(second)
    after = world.get(second.run_id)
    assert after.state == State.ROLLED_BACK and "died after the switch" in after.error
    assert world.alerts() == ["step.failed"]
    assert world.get(first.run_id).state == State.LIVE  # never retired: the candidate never passed
    assert serving(world, first.endpoint) == [first.deployment]
    assert after.deployment not in world.platform.endpoints[first.endpoint].deployments


def test_five_concurrent_drops_take_turns_and_the_newest_ends_live(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    runs = [world.upload(f"drop-{i}.jsonl", b"".join(LINES[i:i + 30])) for i in range(5)]
    for run in runs:
        world.platform.finish(run.job_name)
    for run in runs:  # five job events at once; five step workers
        world.life.on_job_event(world.event(run, "Completed"))
    world.drain(workers=5)
    states = Counter(world.get(r.run_id).state for r in runs)
    assert states[State.LIVE] == 1 and states[State.ROLLED_BACK] == 0, states
    assert states[State.SUPERSEDED] + states[State.TORN_DOWN] == 4, states
    (live,) = [world.get(r.run_id) for r in runs if world.get(r.run_id).state == State.LIVE]
    assert live.run_id == max(runs, key=lambda r: (r.created_at, r.run_id)).run_id  # the newest upload
    assert serving(world, live.endpoint) == [live.deployment]
    assert list(world.platform.endpoints[live.endpoint].deployments) == [live.deployment]
    # Overtaken runs say so, once each, as a notice; nothing is alerted as a failed deploy.
    assert Counter(world.alerts()) == Counter({"deploy.superseded": states[State.SUPERSEDED]})
    for run in runs:
        after = world.get(run.run_id)
        if after.state == State.SUPERSEDED:
            assert live.run_id in after.error or "uploaded later" in after.error
    assert world.platform.deleted_unfinished == []


def test_a_run_waits_its_turn_while_another_deploys_to_its_endpoint(tmp_path: Path) -> None:
    world = world_at(tmp_path)
    older, newer = (world.upload(f"{n}.jsonl", b"".join(LINES[i:i + 30]))
                    for i, n in ((0, "old"), (5, "new")))
    for run in (older, newer):
        world.platform.finish(run.job_name)
    world.life.on_job_event(world.event(older, "Completed"))
    world.drain(until=lambda: world.get(older.run_id).deploy_started_at is not None)
    world.life.on_job_event(world.event(newer, "Completed"))
    world.drain(until=lambda: world.get(older.run_id).state == State.LIVE)
    waiting = world.get(newer.run_id)
    assert waiting.state == State.REGISTERED
    assert any("waiting for" in e.get("note", "") for e in waiting.history)
    world.drain()
    assert world.get(newer.run_id).state == State.LIVE and world.get(older.run_id).state == State.TORN_DOWN
    assert world.alerts() == []
