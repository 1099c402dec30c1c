"""A step's claim, or a manifest's arrival, that loses the compare-and-set (another handler wrote the run
first) is judged again on the run as re-read, through the ledger's one conflict-retry helper: a step runs once
it wins, and after three lost claims its message is left for its redelivery, holding nothing."""

from __future__ import annotations

from pathlib import Path

from shared.lifecycle import Result, Step
from shared.runs import State, codec
from shared.runs.memory import InMemoryRowStore
from shared.runs.port import Row
from tests.fakes.world import SAMPLE, MemoryWorld


class Racing(InMemoryRowStore):
    """Before each of our next `races` writes of a run, another handler writes that run: ours loses."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    def replace(self, row: Row) -> Row:
        if self.races and row.kind == codec.KIND:
            self.races -= 1
            theirs = self.get(row.kind, row.key)
            assert theirs is not None
            super().replace(theirs)
        return super().replace(row)


def submit_waiting(tmp_path: Path, races: int) -> tuple[MemoryWorld, Racing]:
    """A world whose one run waits for its submit step, its later run writes raced `races` times."""
    world = MemoryWorld(tmp_path)
    store = Racing(races=0)
    world.ledger.store = store
    world.life.on_upload(world.drop("chats.jsonl"))
    store.races = races
    return world, store


def test_a_claim_lost_to_another_write_is_judged_again_and_the_step_runs_once(tmp_path: Path) -> None:
    world, store = submit_waiting(tmp_path, races=2)
    (message,) = world.queued()
    assert message.step == Step.SUBMIT
    outcome = world.life.on_step(message)
    assert outcome.result == Result.SUBMITTED and store.races == 0
    assert world.platform.effects["submit"] == 1


def test_a_run_that_keeps_changing_leaves_the_message_for_its_redelivery_holding_nothing(
        tmp_path: Path) -> None:
    world, store = submit_waiting(tmp_path, races=10)
    (message,) = world.queued()
    outcome = world.life.on_step(message)
    assert outcome.result == Result.IN_PROGRESS and "kept changing" in outcome.detail
    assert store.races == 10 - 3  # three claims, each lost
    run = world.run()
    assert world.platform.effects["submit"] == 0 and run.lease_step == "" and run.lease_until is None


def test_a_waiting_manifest_whose_record_changed_meanwhile_still_starts_its_run(tmp_path: Path) -> None:
    world = MemoryWorld(tmp_path)
    store = Racing(races=0)
    world.ledger.store = store
    waiting = world.life.on_upload(world.drop("mset/own.manifest.json",
                                              b'{"data": "own.jsonl", "test": "held.jsonl"}'))
    assert waiting.result == Result.WAITING
    world.life.on_upload(world.drop("mset/own.jsonl"))
    store.races = 1  # the last file's handler loses its first write of the waiting record
    started = world.life.on_upload(world.drop("mset/held.jsonl", b"".join(SAMPLE.read_bytes().splitlines(
        keepends=True)[-5:])))
    assert started.result == Result.QUEUED and store.races == 0, started
    assert world.get(waiting.run_id).state == State.ARRIVED
