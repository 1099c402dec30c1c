"""One endpoint-name rule (Azure ML's), kept by settings and by every adapter."""

from __future__ import annotations

import pytest

from shared.platforms.port import PlatformError, check_name
from shared.settings import Settings, SettingsError

GOOD = ["abc", "a-b", "Autopilot-chat", "a" * 32, "ep-local-test", "a2c"]
BAD = ["ab", "a1", "a" * 33, "1abc", "-abc", "abc-", "ab_c", "ab.c", "ab c", "ép-1", ""]


@pytest.mark.parametrize("name", GOOD)
def test_names_azure_accepts_pass_everywhere(name: str) -> None:
    assert check_name("endpoint", name) == name
    env = {"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true", "ENDPOINT_NAME": name}
    assert Settings.from_env(env).endpoint_name == name


@pytest.mark.parametrize("name", BAD)
def test_names_azure_refuses_are_refused_everywhere(name: str) -> None:
    with pytest.raises(PlatformError, match="not valid on Azure ML"):
        check_name("endpoint", name)
    if name:  # an empty ENDPOINT_NAME is unset: the default
        with pytest.raises(SettingsError, match="ENDPOINT_NAME"):
            Settings.from_env({"AUTOPILOT_STORAGE": "UseDevelopmentStorage=true", "ENDPOINT_NAME": name})


def test_the_local_adapter_refuses_a_trailing_hyphen() -> None:
    from shared.platforms.local.endpoint_files import check_name as local_check

    with pytest.raises(PlatformError):
        local_check("endpoint", "ends-with-")
