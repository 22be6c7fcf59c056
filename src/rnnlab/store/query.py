"""Reading the store: runs (searched, every page), a run's children, a metric's
history, artifacts downloaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from rnnlab.store.log import PARENT_TAG
from rnnlab.store.uris import StoreError, reason, redact


def download(client: MlflowClient, run_id: str, artifact_path: str, dest: Path) -> Path:
    """Fetch one artifact (file or folder) of a run into ``dest``; return its local path.
    Raises StoreError when the store records the run's artifacts in a local folder that
    does not exist (a store moved or copied without them), LookupError when the run
    has no such artifact."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return Path(client.download_artifacts(run_id, artifact_path, str(dest)))
    except Exception as exc:
        missing = missing_artifact_root(client, run_id)
        if missing:
            raise StoreError(missing) from None
        raise LookupError(f"run {run_id} has no artifact {artifact_path}") from exc


def missing_artifact_root(client: MlflowClient, run_id: str) -> str | None:
    """Why a run's artifacts cannot be read when the store says they are in a local
    folder that is not there (None otherwise): the store keeps absolute locations, so a
    store moved or copied elsewhere still points at the old place."""
    from urllib.parse import unquote, urlparse

    try:
        run = client.get_run(run_id)
        experiment = client.get_experiment(run.info.experiment_id)
    except Exception:
        return None

    def local(uri: str | None) -> Path | None:
        if not uri or ("://" in uri and not uri.startswith("file:")):
            return None
        return Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)

    folder, root = local(run.info.artifact_uri), local(experiment.artifact_location)
    # a run that logged nothing has no folder either; its experiment's folder then exists
    if folder is None or root is None or folder.exists() or root.exists():
        return None
    return (
        f"run {run_id}'s artifacts are expected at {folder} (where the store says they "
        "are), which does not exist: the store was probably moved or copied without its "
        "artifact folder, or that folder was moved; put it back there (or link it)"
    )


def get_run(client: MlflowClient, run_id: str):
    """The run; LookupError (one line) if the store has no such run, StoreError if the
    store could not answer (a server timing out, a database error)."""
    try:
        return client.get_run(run_id)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise StoreError(
                f"cannot read run {run_id!r} from {redact(client.tracking_uri)}: {reason(exc)}"
            ) from None
        raise LookupError(f"no run {run_id!r} in {redact(client.tracking_uri)}") from exc


def search(
    client: MlflowClient,
    experiment_ids: list[str],
    filter_string: str = "",
    every_lifecycle: bool = False,
) -> list:
    """Every run matching ``filter_string``, oldest first, all pages; deleted runs too
    with ``every_lifecycle``."""
    runs: list = []
    token = None
    while True:
        page = client.search_runs(
            experiment_ids,
            filter_string=filter_string,
            run_view_type=ViewType.ALL if every_lifecycle else ViewType.ACTIVE_ONLY,
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    """Every run whose parent is ``parent_run_id``, oldest first."""
    return search(client, [experiment_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}'")


def metric_history(client: MlflowClient, run_id: str, key: str) -> np.ndarray:
    """A metric's values ordered by step."""
    history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
    return np.array([m.value for m in history], dtype=float)


def download_yaml(client: MlflowClient, run_id: str, folder: str, names: Sequence[str]) -> list:
    """The YAML files ``names`` of the run's artifact ``folder``, parsed. Raises
    StoreError when the artifacts are not where the store says, else what MLflow or the
    parser raises (a file missing, not YAML)."""
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        local = download(client, run_id, folder, Path(tmp))
        return [yaml.safe_load((local / name).read_text()) for name in names]
