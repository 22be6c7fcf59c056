"""Reading the store: runs (searched, every page), a run's children, a metric's
history, artifacts downloaded.
"""

from __future__ import annotations

import re
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


RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # MLflow's run ids: 32 hex digits; others' too


def check_run_id(run_id: str) -> str:
    """``run_id`` if it can be a run id (letters, digits, ``_``, ``-``; at most 64), else
    LookupError (one line, the id shortened): a run id is read nowhere else unchecked."""
    if not RUN_ID.fullmatch(run_id):
        shown = f"{run_id[:40]}... ({len(run_id):,} characters)" if len(run_id) > 40 else run_id
        raise LookupError(
            f"{shown!r} is not a run id: MLflow's are 32 letters and digits (the run's "
            "page in the MLflow UI shows it)"
        )
    return run_id


def get_run(client: MlflowClient, run_id: str):
    """The run, live: LookupError (one line) if the store has no such run, or it is
    deleted (in its experiment's trash), or its experiment is; StoreError if the store
    could not answer (a server timing out, a database error)."""
    check_run_id(run_id)
    where = redact(client.tracking_uri)
    try:
        run = client.get_run(run_id)
        experiment = client.get_experiment(run.info.experiment_id)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise StoreError(f"cannot read run {run_id!r} from {where}: {reason(exc)}") from None
        raise LookupError(f"no run {run_id!r} in {where} (or it was deleted for good)") from exc
    restore = f"MLFLOW_TRACKING_URI={where} uv run mlflow"
    if experiment.lifecycle_stage == "deleted":  # (which deletes its runs too)
        raise LookupError(
            f"run {run_id} is in experiment {experiment.name!r} (id {experiment.experiment_id}), "
            f"which is deleted: restore it first ({restore} experiments restore "
            f"--experiment-id {experiment.experiment_id})"
        )
    if run.info.lifecycle_stage == "deleted":
        raise LookupError(
            f"run {run_id} is deleted (in the trash of experiment {experiment.name!r}): "
            f"restore it first, in the MLflow UI or with {restore} runs restore --run-id {run_id}"
        )
    return run


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
    return metric_series(client, run_id, key)[1]


def metric_series(client: MlflowClient, run_id: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """A metric's (steps, values), ordered by step: the steps are the iterations the
    values were logged at (a sweep job logs every k-th: ``step_metrics.sweep_job_points``)."""
    history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
    steps = np.array([m.step for m in history], dtype=int)
    return steps, np.array([m.value for m in history], dtype=float)


def download_yaml(client: MlflowClient, run_id: str, folder: str, names: Sequence[str]) -> list:
    """The YAML files ``names`` of the run's artifact ``folder``, parsed. Raises
    StoreError when the artifacts are not where the store says, else what MLflow or the
    parser raises (a file missing, not YAML)."""
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        local = download(client, run_id, folder, Path(tmp))
        return [yaml.safe_load((local / name).read_text(encoding="utf-8")) for name in names]
