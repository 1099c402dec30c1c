"""The local registry's first use on a fresh data dir: MLflow's migrations run once, under its lock.

The other tests start from a copy of a migrated database (tests/conftest.py `new_data_dir`); this one starts
from nothing, as a first `make up` does, with two first uses racing, as the app and a job child may.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from shared.platforms.local import mlflow_store

pytestmark = pytest.mark.integration


def schema_version(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return str(connection.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_two_first_uses_of_a_fresh_data_dir_migrate_it_once_to_the_templates_schema(
        tmp_path: Path, mlflow_template: Path) -> None:
    clients: list[Any] = []
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            clients.append(mlflow_store.use(tmp_path))
        except BaseException as error:  # kept for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(clients) == 2
    assert schema_version(tmp_path / "mlflow.db") == schema_version(mlflow_template)
    experiment = mlflow_store.ensure_experiment(clients[0], tmp_path, "first-use")
    assert mlflow_store.ensure_experiment(clients[1], tmp_path, "first-use") == experiment
    names = [e.name for e in clients[1].search_experiments()]
    assert sorted(names) == ["Default", "first-use"]
