"""Everything MLflow: the store, the standard tags, and what gets logged.

The only module (with ``lifecycle`` and ``pyfunc_model``) that imports mlflow. Runs
are handled through an explicit ``MlflowClient`` and run id (no global "active run"),
so the same code serves a single job, a job inside a sweep, and the Python API.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from rnnlab.store.uris import fluent_uri

METRIC_BATCH = 1000  # MLflow's limit of metrics per log_batch call
PARAM_BATCH = 100  # ... of params per call
TAG_BATCH = 100  # ... of tags per call
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"  # a run's (or experiment's) description in the UI
RUN_NAME_TAG = "mlflow.runName"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"


# --- what every run records about where it came from -----------------------------------


@functools.cache
def git_state() -> dict[str, str]:
    """The commit of the checkout rnnlab runs from, and whether its tree was dirty."""
    root = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown"}
    return {
        "git_commit": commit,
        "git_dirty": str(dirty).lower(),
        "mlflow.source.git.commit": commit,
    }


@functools.cache
def lineage() -> dict[str, str]:
    """What it takes to reproduce a run: library versions and the lock file's hash."""
    tags = {
        f"version.{pkg}": version(pkg)
        for pkg in ("numpy", "hydra-core", "omegaconf", "mlflow", "matplotlib")
    }
    lock = Path(__file__).resolve().parents[3] / "uv.lock"
    if lock.exists():
        tags["uv_lock_sha256"] = hashlib.sha256(lock.read_bytes()).hexdigest()
    return tags


def source_tags(source: str) -> dict[str, str]:
    """MLflow's standard columns: Source (the command that made the run), its type, and
    Created by; plus the checkout's commit and the libraries' versions."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (a container without passwd)
        user = "unknown"
    return {
        "mlflow.source.name": source,
        "mlflow.source.type": "LOCAL",
        "mlflow.user": user,
        **git_state(),
        **lineage(),
    }


# --- logging ---------------------------------------------------------------------------


def _shielded(write):
    """``write`` is not cut in two by a signal (``proc.signals.shielded``): a signal during
    it takes effect when it returns."""

    @functools.wraps(write)
    def whole(*args, **kwargs):
        from rnnlab.proc import signals

        with signals.shielded():
            return write(*args, **kwargs)

    return whole


@_shielded
def log_batch(
    client: MlflowClient,
    run_id: str,
    metrics: Iterable[Metric] = (),
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Metrics, params and tags in as few calls as MLflow's batch limits allow."""
    metrics = list(metrics)
    params_ = [Param(k, str(v)) for k, v in sorted((params or {}).items())]
    tags_ = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    while metrics or params_ or tags_:
        client.log_batch(
            run_id,
            metrics=metrics[:METRIC_BATCH],
            params=params_[:PARAM_BATCH],
            tags=tags_[:TAG_BATCH],
        )
        metrics, params_, tags_ = (
            metrics[METRIC_BATCH:],
            params_[PARAM_BATCH:],
            tags_[TAG_BATCH:],
        )


def series(
    columns: Mapping[str, np.ndarray], now: int | None = None, points: int | None = None
) -> list[Metric]:
    """Per-iteration metrics, step = the index in each series. With ``points``, a longer
    series is thinned to every k-th value (k = ceil((n - 1) / (points - 1))) and its last,
    so at most ``points`` (+1) rows: the chart keeps its shape and its end."""
    now = now or int(time.time() * 1000)
    metrics = []
    for key, values in columns.items():
        values = np.asarray(values, dtype=float)
        steps = np.arange(len(values))
        if points is not None and len(values) > points:
            stride = -(-(len(values) - 1) // (points - 1))
            steps = np.union1d(steps[::stride], [len(values) - 1])
        metrics += [
            Metric(key, v, now, step)
            for step, v in zip(steps.tolist(), values[steps].tolist(), strict=True)
        ]
    return metrics


def scalars(values: Mapping[str, float | None], now: int | None = None) -> list[Metric]:
    """Summary metrics at step 0; a missing or non-finite value is left out."""
    now = now or int(time.time() * 1000)
    return [
        Metric(k, float(v), now, 0) for k, v in values.items() if v is not None and math.isfinite(v)
    ]


@_shielded
def log_dataset(client: MlflowClient, run_id: str, name: str, digest: str, X, t) -> None:
    """The training data as an MLflow dataset input (with its digest)."""
    from mlflow.entities import DatasetInput, InputTag

    ds = mlflow.data.from_numpy(X, targets=t, name=name, digest=digest)
    inputs = [DatasetInput(ds._to_mlflow_entity(), [InputTag("mlflow.data.context", "training")])]
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


@_shielded
def log_files(client: MlflowClient, run_id: str, folder: Path, artifact_path: str | None) -> None:
    """Every file under ``folder`` as artifacts under ``artifact_path``."""
    client.log_artifacts(run_id, str(folder), artifact_path)


@_shielded
def log_text(client: MlflowClient, run_id: str, text: str, path: str) -> None:
    client.log_text(run_id, text, path)


@_shielded
def log_table(client: MlflowClient, run_id: str, table: Mapping[str, list], path: str) -> None:
    client.log_table(run_id, data=dict(table), artifact_file=path)


# --- the model -------------------------------------------------------------------------


@contextlib.contextmanager
def _model_files_only() -> Iterator[None]:
    """While a model is logged: MLflow copies no uv project files (``uv.lock``,
    ``pyproject.toml``: it would find the checkout's) and Python writes no bytecode into
    the model's folder (MLflow imports the model's code to check it; rnnlab turns
    bytecode caching on for its start-up, see ``rnnlab/__init__.py``)."""
    before_env = os.environ.get("MLFLOW_UV_AUTO_DETECT")
    before_bytecode = sys.dont_write_bytecode
    os.environ["MLFLOW_UV_AUTO_DETECT"] = "false"
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before_bytecode
        if before_env is None:
            os.environ.pop("MLFLOW_UV_AUTO_DETECT", None)
        else:
            os.environ["MLFLOW_UV_AUTO_DETECT"] = before_env


MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")


@_shielded
def log_model(
    client: MlflowClient,
    experiment_id: str,
    run_id: str,
    wx: float,
    wrec: float,
    example,
    params: Mapping[str, str] | None = None,
) -> None:
    """The trained network as the run's pyfunc model ``model`` (``runs:/RUN_ID/model``):
    code (no pickle), the weights as an artifact, a signature and an input example, and
    its requirements given (MLflow infers nothing and copies no lock file)."""
    import json
    import tempfile

    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    example = np.atleast_2d(np.asarray(example, dtype=float))
    # any number of sequences of any length in, one sum per sequence out
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float64"), (-1, -1))]),
        outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]),
    )
    # The logged model is created here, in the run's experiment: left to MLflow it would
    # go to the process's "active" experiment (Default, under ./mlruns).
    model = client.create_logged_model(
        experiment_id, name="model", source_run_id=run_id, params=dict(params or {})
    )
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.json"
        weights.write_text(json.dumps({"wx": float(wx), "wrec": float(wrec)}))
        # Model.log with an explicit run id: no fluent "active run" is resumed (and ended);
        # it logs through MLflow's process-wide store, set to this one for the call only
        with fluent_uri(client.tracking_uri), _model_files_only():
            mlflow.models.Model.log(
                artifact_path=None,
                name="model",
                flavor=mlflow.pyfunc,
                run_id=run_id,
                model_id=model.model_id,
                python_model=str(MODEL_CODE),
                artifacts={"weights": str(weights)},
                signature=signature,
                input_example=example,
                pip_requirements=[f"numpy=={version('numpy')}", f"mlflow=={version('mlflow')}"],
            )
