"""The teardown simulation on a small fleet: its bound and false-teardown check hold, and can fail."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from shared.idle import IdleVerdict
from shared.platforms.port import EndpointInfo

SIM_PATH = Path(__file__).resolve().parents[2] / "bench" / "teardown_sim.py"


@pytest.fixture(scope="module")
def sim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("teardown_sim", SIM_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fleet(sim: ModuleType) -> object:
    return sim.make_fleet(120, 3 * 1440, seed=1)


@pytest.mark.parametrize("ttl_hours", [1.0, 2.0])
def test_ours_bills_at_most_ttl_plus_a_period_after_the_last_request(sim: ModuleType, fleet: object,
                                                                     ttl_hours: float) -> None:
    outcome = sim.simulate(fleet, ttl_hours, 15, 50, 10).summary
    assert outcome["false_teardowns"] == 0
    assert outcome["idle_hours_after_last_request_max"] <= ttl_hours + 0.25
    assert outcome["teardowns"] > 0 and outcome["requests_to_torn_down"] > 0


def test_no_sweep_bills_idle_endpoints_to_the_horizon(sim: ModuleType, fleet: object) -> None:
    none = sim.simulate(fleet, None, 15, 50, 10).summary
    ours = sim.simulate(fleet, 2.0, 15, 50, 10).summary
    assert none["teardowns"] == 0 and none["idle_hours_after_last_request_max"] > 24
    assert ours["billed_endpoint_hours"] < none["billed_endpoint_hours"]


def test_a_decision_without_grace_is_caught_as_false_teardowns(sim: ModuleType, fleet: object,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def hasty(endpoint: EndpointInfo, last: datetime | None, now: datetime, ttl: timedelta) -> IdleVerdict:
        return IdleVerdict(endpoint.name, True, "always", timedelta(hours=1))

    monkeypatch.setattr(sim, "judge", hasty)
    assert sim.simulate(fleet, 2.0, 15, 50, 10).summary["false_teardowns"] > 0


def test_the_deletion_cap_defers_and_is_reported(sim: ModuleType, fleet: object) -> None:
    assert sim.simulate(fleet, 1.0, 15, 1, 10).summary["deferred_by_cap"] > 0
