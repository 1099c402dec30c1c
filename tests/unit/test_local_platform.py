"""The local adapter is a facade like the Azure ML one: one class over its jobs and endpoints modules, with
every method of the port, and made without starting anything."""

from __future__ import annotations

import inspect
from pathlib import Path

from shared.platforms.azureml import AzureMLPlatform
from shared.platforms.local import LocalPlatform
from shared.platforms.local.endpoints import LocalEndpoints
from shared.platforms.local.jobs import LocalJobs
from shared.platforms.port import Platform
from shared.settings import Settings

PORT = {name for name, member in vars(Platform).items()
        if inspect.isfunction(member) and not name.startswith("_")}


def test_the_facade_has_every_port_method_with_the_ports_signature(tmp_path: Path):
    local = LocalPlatform(Settings.from_env({"AUTOPILOT_DATA_DIR": str(tmp_path),
                                             "AUTOPILOT_STORAGE": "UseDevelopmentStorage=true"}))
    assert isinstance(local, Platform)
    assert PORT and set(dir(LocalPlatform)) >= PORT
    for name in PORT:
        signature = inspect.signature(getattr(Platform, name))
        assert inspect.signature(getattr(LocalPlatform, name)) == signature, name
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "endpoints").exists()  # nothing made yet


def test_both_adapters_are_facades_not_mixins():
    for adapter in (LocalPlatform, AzureMLPlatform):
        assert adapter.__bases__ == (object,), adapter
    # Each port method of the local facade is written in it, not inherited from the modules it delegates to.
    assert all(name in vars(LocalPlatform) for name in PORT)
    assert not issubclass(LocalPlatform, LocalJobs | LocalEndpoints)
