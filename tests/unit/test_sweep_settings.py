"""The sweep's settings: safe defaults, and a clear error naming a bad value."""

from __future__ import annotations

import pytest

from shared.settings import Settings, SettingsError

BASE = {"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"}


def test_defaults_delete_for_real_with_a_cap_and_the_15_day_reference() -> None:
    s = Settings.from_env(BASE)
    assert s.sweep_dry_run is False and s.sweep_max_deletions == 50 and s.cost_reference_hours == 360.0
    assert s.sweep_schedule == "0 */15 * * * *"


def test_sweep_settings_are_read() -> None:
    s = Settings.from_env({**BASE, "SWEEP_DRY_RUN": "Yes", "SWEEP_MAX_DELETIONS": "3",
                           "COST_REFERENCE_HOURS": "720"})
    assert s.sweep_dry_run is True and s.sweep_max_deletions == 3 and s.cost_reference_hours == 720.0


@pytest.mark.parametrize(("env", "message"), [
    ({"SWEEP_DRY_RUN": "maybe"}, "SWEEP_DRY_RUN='maybe' is not a boolean"),
    ({"SWEEP_MAX_DELETIONS": "0"}, "SWEEP_MAX_DELETIONS=0 must be at least 1"),
    ({"SWEEP_MAX_DELETIONS": "lots"}, "SWEEP_MAX_DELETIONS='lots' is not an integer"),
    ({"COST_REFERENCE_HOURS": "-5"}, "COST_REFERENCE_HOURS=-5.0 must be a positive"),
    ({"COST_REFERENCE_HOURS": "nan"}, "COST_REFERENCE_HOURS=nan must be a positive"),
])
def test_bad_sweep_settings_name_themselves(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**BASE, **env})
