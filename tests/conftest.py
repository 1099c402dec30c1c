"""Fixtures shared by every tier: a real Azurite on free loopback ports, settings pointing at it.

Tiers, by directory: tests/integration → `integration`, tests/e2e → `e2e`, tests/contract → `integration`
except the runs on the in-memory backends (a `memory` parameter); the engine's own tests sit in each tier's
`engine/` folder (tests/unit/engine, tests/integration/engine) and take its tier. Everything else is the unit
tier: it starts no process (a guard fails any spawn) and is what `make test-fast` runs (`-m "not integration
and not e2e"`).
"""

from __future__ import annotations

import contextlib
import multiprocessing.process
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from devhost import azurite as azurite_proc
from shared.platforms.local.job_files import TRAINER_MODULE
from shared.platforms.local.server_process import SERVER_MODULE
from shared.settings import Settings

TESTS = Path(__file__).resolve().parent
# azure-identity's user agent asks platform.processor(), which runs `uname -p` once per process: asked here,
# before any test, so a unit test importing the app late is not refused for the library's own spawn.
platform.processor()
PROCESS_TIERS = ("integration", "e2e")


def tier(item: pytest.Item) -> str:
    """The item's tier: its directory's, and a contract run on a real backend is integration."""
    folder = Path(item.path).relative_to(TESTS).parts[0]
    if folder in PROCESS_TIERS:
        return folder
    if folder == "contract":
        callspec = getattr(item, "callspec", None)
        in_memory = callspec is not None and "memory" in callspec.params.values()
        return "unit" if in_memory else "integration"
    return "unit"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if (name := tier(item)) in PROCESS_TIERS and not item.get_closest_marker(name):
            item.add_marker(name)


def in_unit_tier(item: pytest.Item) -> bool:
    return not any(item.get_closest_marker(name) for name in PROCESS_TIERS)


# Every way this process can start another: subprocess (and asyncio's, which uses it), os.system/spawn*/fork,
# pty, multiprocessing (fork, forkserver and spawn all go through BaseProcess.start).
SPAWNERS: tuple[tuple[Any, str], ...] = (
    (subprocess.Popen, "_execute_child"), (os, "fork"), (os, "forkpty"), (os, "system"),
    (os, "posix_spawn"), (os, "posix_spawnp"), (multiprocessing.process.BaseProcess, "start"))


@contextlib.contextmanager
def no_processes(item: pytest.Item) -> Iterator[None]:
    """Fail the unit-tier `item` (its fixtures included) at the first process it starts."""
    if not in_unit_tier(item):
        yield
        return
    if "azurite" in item.fixturenames:
        pytest.fail("a unit test uses Azurite: move it to tests/integration", pytrace=False)

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            # Failed is a BaseException: a broad `except Exception` in the code under test cannot hide it.
            pytest.fail(f"a unit test started a process ({name}): move it to tests/integration, "
                        "or test the rule without the process", pytrace=True)
        return refused

    with pytest.MonkeyPatch.context() as patch:
        for owner, attribute in SPAWNERS:
            if hasattr(owner, attribute):
                patch.setattr(owner, attribute, refuse(f"{getattr(owner, '__name__', owner)}.{attribute}"))
        yield


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The random order's seed, also under -q (which hides pytest-randomly's header line)."""
    seed = config.getoption("randomly_seed", None) if config.pluginmanager.hasplugin("randomly") else None
    if isinstance(seed, int):
        terminalreporter.write_line(f"random order: repeat it with --randomly-seed={seed}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with no_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with no_processes(item):
        return (yield)


# The command lines the local adapter starts engine processes with (`python -m MODULE …`).
ENGINE_PROCESSES = (f"-m\0{TRAINER_MODULE}\0".encode(), f"-m\0{SERVER_MODULE}\0".encode())


def engine_processes(under: Path) -> list[int]:
    """Local fine-tune jobs and model servers whose command line names a path under `under`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes() if proc.name.isdigit() else b""
        except OSError:
            continue  # gone meanwhile
        if any(name in cmdline for name in ENGINE_PROCESSES) and str(under).encode() in cmdline:
            found.append(int(proc.name))
    return found


@pytest.fixture(autouse=True)
def no_engine_process_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A job or model server a test started in its own folder ends with the test (after its fixtures' own
    clean-up); one still running is stopped, and the test fails saying so. A job that has just reported its
    end gets a few seconds to exit by itself."""
    if in_unit_tier(request.node) or "tmp_path" not in request.fixturenames:
        yield
        return
    folder: Path = request.getfixturevalue("tmp_path")  # asked for here, so it is torn down after this
    yield
    deadline = time.monotonic() + 20
    while (left := engine_processes(folder)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # each runs in a session of its own (start_new_session)
    if left:
        pytest.fail(f"local engine processes outlived the test and were killed: {left}", pytrace=False)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite_proc.Azurite]:
    """One in-memory Azurite for the whole test session."""
    location = tmp_path_factory.mktemp("azurite")
    with azurite_proc.running(location, in_memory=True, log=location / "azurite.log") as instance:
        yield instance


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow database migrated once per session: creating one runs ~9 s of migrations, a copy ~0.1 s.

    Migrated in a scratch folder (MLflow's tracking URI is process-wide and stays on it), then copied aside,
    so nothing a later test logs can reach the template.
    """
    from shared.platforms.local import mlflow_store

    scratch = tmp_path_factory.mktemp("mlflow-scratch")
    mlflow_store.use(scratch)
    template = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    shutil.copyfile(scratch / "mlflow.db", template)
    return template


@pytest.fixture(scope="session")
def new_data_dir(mlflow_template: Path) -> Callable[[Path], Path]:
    """Make `path` a fresh local-engine data dir whose MLflow store is already migrated; returns `path`.

    Every data dir the local engine uses in a test starts here (its training child and model servers would
    otherwise each wait on the migration). One test, tests/integration/test_mlflow_store.py, migrates from
    nothing, as a first `make up` does.
    """
    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mlflow_template, path / "mlflow.db")
        return path

    return make


@pytest.fixture
def settings_env(azurite: azurite_proc.Azurite, tmp_path: Path, new_data_dir: Callable[[Path], Path],
                 request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for a test's own app instance: fresh containers/table names so tests don't collide."""
    suffix = "t" + format(abs(hash(request.node.nodeid)) % 10**8, "08d")
    return {
        "AUTOPILOT_STORAGE": azurite.connection_string,
        "AUTOPILOT_PLATFORM": "local",
        "AUTOPILOT_DATA_DIR": str(new_data_dir(tmp_path / "data")),
        "INCOMING_CONTAINER": f"in{suffix}",
        "STAGED_CONTAINER": f"st{suffix}",
        "REJECTED_CONTAINER": f"rj{suffix}",
        "LEDGER_TABLE": f"runs{suffix}",
        "JOB_EVENT_QUEUE": f"ev{suffix}",
        # Plumbing tests fine-tune the tiny random model (seconds); tests of learning ask for SmolLM2.
        "BASE_MODEL": "tiny-random",
        "STEP_QUEUE": f"steps{suffix}",
        # The step queue's delays are Azurite's, real time in whole seconds: poll a deployment every second.
        "DEPLOY_POLL_INTERVAL": "1s",
        "DEPLOY_POLL_MAX_INTERVAL": "1s",
    }


@dataclass(frozen=True)
class FirstUses:
    """What two processes that prepared SmolLM2 at the same time into one empty folder each saw."""

    folder: Path
    results: list[tuple[int, str, str]]  # per process: exit code, stdout (the inode it got), stderr


@pytest.fixture(scope="session")
def smollm2_first_uses(tmp_path_factory: pytest.TempPathFactory) -> FirstUses:
    """SmolLM2-135M-Instruct prepared from its wheel once per session (~25 s) by two racing first uses, as a
    job child and the app may: one converts, the other waits for it (tests/integration/engine/test_smollm2.py
    checks that); one preparation serves both that check and every test that learns."""
    folder = tmp_path_factory.mktemp("models")
    script = ("import os, sys; from pathlib import Path; from engine.models import smollm2; "
              "print(os.stat(smollm2.ensure_prepared(Path(sys.argv[1]))).st_ino)")
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    children = [subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [child.communicate(timeout=420) for child in children]
    return FirstUses(folder, [(child.returncode, out, err)
                              for child, (out, err) in zip(children, outputs, strict=True)])


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_first_uses: FirstUses) -> Path:
    """The prepared SmolLM2 directory, for tests that learn."""
    from engine.models import smollm2

    assert all(code == 0 for code, _, _ in smollm2_first_uses.results), \
        [err[-2000:] for _, _, err in smollm2_first_uses.results]
    return smollm2.ensure_prepared(smollm2_first_uses.folder)


@pytest.fixture
def settings(settings_env: dict[str, str]) -> Settings:
    return Settings.from_env(settings_env)
