"""A model that passed its gate is not gated again when it is redeployed (issue 22's cold start): a wake has
no live deployment to compare with, and the model is the same. It gets one readiness request; a new model,
or one its gate refused, still gets the whole gate. Counted on the in-memory platform's score calls."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from shared.runs import Run, State
from tests.fakes.world import SAMPLE, MemoryWorld

CASES = 2  # SMOKE_CONVERSATIONS: the full gate asks each deployment this many times
LIKE_THE_REFERENCES = "Hi! You can return it within 45 days. \u2014 Orbit Support"  # as the sample answers


def _world(tmp_path: Path) -> MemoryWorld:
    return MemoryWorld(tmp_path, IDLE_TTL="1h", SMOKE_CONVERSATIONS=str(CASES))


def _asleep(world: MemoryWorld) -> Run:
    live = world.live_run()
    world.skipped += timedelta(hours=3)
    assert world.life.on_sweep().deleted == [live.endpoint]
    return world.get(live.run_id)


def _second_upload(world: MemoryWorld) -> Run:
    return world.upload("second.jsonl", b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:40]))


def test_a_wake_asks_the_woken_model_once_and_keeps_its_gate_figures(tmp_path: Path) -> None:
    world = _world(tmp_path)
    asleep = _asleep(world)
    assert asleep.state == State.TORN_DOWN and asleep.eval_rouge_l is not None
    scored, job_reads = len(world.platform.scored), world.platform.effects["job_status"]

    world.life.redeploy(asleep, wake=True)
    world.drain()

    woken = world.get(asleep.run_id)
    assert woken.state == State.LIVE and woken.wakes == 1, woken
    assert world.platform.scored[scored:] == [(woken.endpoint, woken.deployment)]  # one readiness request
    assert world.platform.effects["job_status"] == job_reads  # the base-model gate is not read again
    assert woken.eval_rouge_l == asleep.eval_rouge_l and woken.smoke_reply == "ok"
    assert "gate passed before" in woken.history[-1]["note"]


def test_a_new_model_still_gets_the_whole_gate_against_live(tmp_path: Path) -> None:
    world = _world(tmp_path)
    first = world.live_run()
    scored = len(world.platform.scored)
    second = _second_upload(world)
    world.complete(second)
    live = world.get(second.run_id)
    assert live.state == State.LIVE, live
    calls = world.platform.scored[scored:]
    assert calls.count((live.endpoint, live.deployment)) == CASES  # the smoke test, every case
    assert calls.count((first.endpoint, first.deployment)) == CASES  # and the same cases on live
    assert live.baseline_rouge_l is not None


def test_the_readiness_request_still_refuses_a_model_that_does_not_answer(tmp_path: Path) -> None:
    world = _world(tmp_path)
    asleep = _asleep(world)
    world.platform.reply = lambda deployment, payload: {"output": "  "}
    world.life.redeploy(asleep, wake=True)
    world.drain()
    refused = world.get(asleep.run_id)
    assert refused.state == State.ROLLED_BACK and "readiness" in refused.error, refused
    assert world.alerts()[-1] == "deploy.smoke_gate_failed"


def test_a_model_its_gate_refused_is_gated_in_full_when_redeployed(tmp_path: Path) -> None:
    world = _world(tmp_path)
    first = world.live_run()

    def worse(deployment: str, payload: Any) -> dict[str, str]:  # live answers like the references; new not
        return {"output": LIKE_THE_REFERENCES if deployment == first.deployment else "no"}

    world.platform.reply = worse
    second = _second_upload(world)
    world.complete(second)
    refused = world.get(second.run_id)
    assert refused.state == State.ROLLED_BACK and "eval gate" in refused.error, refused
    assert refused.eval_rouge_l is None

    scored = len(world.platform.scored)
    world.life.redeploy(refused)
    world.drain()
    again = world.get(second.run_id)
    assert again.state == State.ROLLED_BACK and "eval gate" in again.error  # gated again, not waved through
    assert len(world.platform.scored) - scored == 2 * CASES
