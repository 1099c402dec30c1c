"""Where the embedded engine's MLflow tracking and model registry live: a sqlite file under the data dir.

Every local component (the training child, the registry side of LocalJobs, the local endpoints) resolves
models through these URIs, so they all see one registry. The registry needs a database backend, hence sqlite.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def tracking_uri(data_dir: Path) -> str:
    """The MLflow tracking (and registry) URI for the data dir."""
    return f"sqlite:///{(Path(data_dir) / 'mlflow.db').resolve()}"


def artifact_root(data_dir: Path) -> Path:
    """Where runs' artifacts (the logged models) are stored."""
    return (Path(data_dir) / "mlartifacts").resolve()


@contextlib.contextmanager
def data_dir_lock(data_dir: Path, name: str) -> Iterator[None]:
    """An exclusive fcntl lock on `data_dir/<name>.lock`, shared by every process using the data dir."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(data_dir) / f"{name}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def use(data_dir: Path) -> Any:
    """Point this process's MLflow at the data dir's store (creating it once) and return an MlflowClient.

    MLflow's tracking URI is process-global; every local caller sets the same value for the same data dir.
    The first creation of the sqlite schema runs migrations, which must not race, hence the lock.
    """
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(data_dir)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with data_dir_lock(data_dir, "mlflow"):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)  # creates/migrates the schema while we hold the lock
    return client


def ensure_experiment(client: Any, data_dir: Path, name: str) -> str:
    """The id of experiment `name`, created with its artifacts under the data dir if it does not exist."""
    with data_dir_lock(data_dir, "mlflow"):
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        return str(client.create_experiment(name, artifact_location=artifact_root(data_dir).as_uri()))


def model_version_uri(name: str, version: str) -> str:
    """The `models:/` URI of a registered model version, for loading or serving it."""
    return f"models:/{name}/{version}"


# Registry aliases that follow the endpoints: the version taking all of an endpoint's traffic, and the one
# being deployed beside it (stages are deprecated in MLflow; aliases replace them).
CHAMPION = "champion"
CHALLENGER = "challenger"


def parse_model_version_uri(uri: str) -> tuple[str, str] | None:
    """(name, version) from a `models:/NAME/VERSION` URI, or None for any other form."""
    name, _, version = uri.removeprefix("models:/").rpartition("/")
    if not uri.startswith("models:/") or not name or not version.isdigit():
        return None
    return name, version


def set_alias(data_dir: Path, alias: str, name: str, version: str) -> None:
    """Point `alias` of registered model `name` at `version` (moving it from any other version)."""
    client = use(data_dir)
    with data_dir_lock(data_dir, "registry"):
        client.set_registered_model_alias(name, alias, version)


def drop_alias(data_dir: Path, alias: str, name: str, version: str) -> None:
    """Remove `alias` of `name` if it points at `version`; an alias that moved on is left alone."""
    from mlflow.exceptions import MlflowException

    client = use(data_dir)
    with data_dir_lock(data_dir, "registry"):
        try:
            current = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return  # no such alias (or model): nothing to drop
        if str(current.version) == str(version):
            client.delete_registered_model_alias(name, alias)


def follow_deployment(data_dir: Path, model_uri: str, event: str) -> None:
    """Move the aliases after a deployment `event`: "created", "took all traffic" or "deleted".

    created → challenger; took all traffic → champion (and challenger dropped from that version);
    deleted → challenger dropped from that version (a rolled-back challenger). The endpoint's own state is
    the truth, so a registry that cannot be written is logged, not raised.
    """
    from mlflow.exceptions import MlflowException

    parsed = parse_model_version_uri(model_uri)
    if parsed is None:
        return
    name, version = parsed
    try:
        if event == "created":
            set_alias(data_dir, CHALLENGER, name, version)
        elif event == "took all traffic":
            set_alias(data_dir, CHAMPION, name, version)
            drop_alias(data_dir, CHALLENGER, name, version)
        elif event == "deleted":
            drop_alias(data_dir, CHALLENGER, name, version)
        else:
            raise ValueError(f"unknown deployment event {event!r}")
    except MlflowException as exc:
        log.warning("could not move the registry aliases of %s version %s after the deployment was %s: %s",
                    name, version, event, exc)
