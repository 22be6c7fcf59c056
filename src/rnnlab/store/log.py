"""What gets logged onto a run: batches of metrics, params and tags, the dataset, files,
tables."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

METRIC_BATCH = 1000  # MLflow's limit of metrics per log_batch call
PARAM_BATCH = 100  # ... of params per call
TAG_BATCH = 100  # ... of tags per call
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"  # a run's (or experiment's) description in the UI
RUN_NAME_TAG = "mlflow.runName"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"


# (key, value, step): a metric as a job makes it, without MLflow (its worker imports none)
MetricPoint = tuple[str, float, int]


def log_batch(
    client: MlflowClient,
    run_id: str,
    metrics: Iterable[MetricPoint] = (),
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Metrics, params and tags in as few calls as MLflow's batch limits allow."""
    now = int(time.time() * 1000)
    metrics_ = [Metric(k, v, now, step) for k, v, step in metrics]
    params_ = [Param(k, str(v)) for k, v in sorted((params or {}).items())]
    tags_ = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    while metrics_ or params_ or tags_:
        client.log_batch(
            run_id,
            metrics=metrics_[:METRIC_BATCH],
            params=params_[:PARAM_BATCH],
            tags=tags_[:TAG_BATCH],
        )
        metrics_, params_, tags_ = (
            metrics_[METRIC_BATCH:],
            params_[PARAM_BATCH:],
            tags_[TAG_BATCH:],
        )


def log_dataset(client: MlflowClient, run_id: str, name: str, digest: str, X, t) -> None:
    """The training data as an MLflow dataset input (with its digest)."""
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.entities import Dataset, DatasetInput, InputTag

    entity = Dataset(**from_numpy(X, targets=t, name=name, digest=digest).to_dict())
    inputs = [DatasetInput(entity, [InputTag("mlflow.data.context", "training")])]
    for attempt in range(DATASET_ATTEMPTS):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except mlflow.exceptions.MlflowException as exc:
            # MLflow's store looks the dataset up, then inserts it: two runs logging the
            # same data at once (a parallel sweep on a server with PostgreSQL) can both
            # miss it, and the second insert fails on the dataset's key. That transaction
            # rolled back whole; the row is there now, and a retry links to it.
            if not _duplicate_dataset(exc) or attempt == DATASET_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


DATASET_ATTEMPTS = 4


def _duplicate_dataset(exc: Exception) -> bool:
    text = str(exc)
    return "dataset" in text.lower() and any(
        mark in text for mark in ("UniqueViolation", "duplicate key", "UNIQUE constraint failed")
    )


def log_files(client: MlflowClient, run_id: str, folder: Path, artifact_path: str | None) -> None:
    """Every file under ``folder`` as artifacts under ``artifact_path``."""
    client.log_artifacts(run_id, str(folder), artifact_path)


def log_table(client: MlflowClient, run_id: str, table: Mapping[str, list], path: str) -> None:
    """``table`` (column -> values) as the MLflow table ``path`` (a ``.json`` artifact in
    pandas' "split" layout, listed in the run's ``mlflow.loggedArtifacts`` tag, as
    ``MlflowClient.log_table`` writes it; that method first lists the run's artifacts, which
    MLflow 3's client does through logged models a 2.x server does not have)."""
    import json
    import tempfile

    from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

    columns = list(table)
    rows = [
        [v if not isinstance(v, float) or math.isfinite(v) else None for v in row]
        for row in zip(*table.values(), strict=True)
    ]
    folder, name = path.rsplit("/", 1) if "/" in path else (None, path)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / name
        file.write_text(json.dumps({"columns": columns, "data": rows}), encoding="utf-8")
        client.log_artifact(run_id, str(file), folder)
    client.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps([{"path": path, "type": "table"}]))
