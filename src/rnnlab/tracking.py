"""Everything MLflow: the store, runs and their lifecycle, and what gets logged.

The only module that imports mlflow. Runs are handled through an explicit
``MlflowClient`` and run id (no global "active run"), so the same code serves a single
job, a job inside a sweep, and the Python API.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import math
import os
import signal
import subprocess
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

# This machine's network is closed and experiments are private: no usage telemetry.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Artifact transfers are small; MLflow's progress bars would only clutter stderr.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow
import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from rnnlab.data import Dataset

METRIC_BATCH = 1000  # MLflow's limit of metrics per log_batch call
PARAM_BATCH = 100  # ... and of params per call
PARENT_TAG = "mlflow.parentRunId"


DEFAULT_URI = "sqlite:///outputs/mlflow.db"  # as conf/tracking/local.yaml


def default_uri() -> str:
    """The store the helper commands read by default: $MLFLOW_TRACKING_URI or the local one."""
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI)


def resolve_uri(uri: str) -> str:
    """Make a relative ``sqlite:///path`` absolute against the current directory.

    MLflow would read it against whatever directory the process is in; a job that
    changes directory (or a worker process) must still find the same store.
    """
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path = Path(uri[len(prefix) :])
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path.resolve())
    return uri


def artifact_location(artifact_root: str | None) -> str | None:
    """An absolute file URI for a local artifact folder (None leaves it to the server)."""
    if not artifact_root:
        return None
    if "://" in artifact_root:
        return artifact_root
    return Path(artifact_root).resolve().as_uri()


_clients: dict[str, MlflowClient] = {}  # one per store and process: opened (and locked) once


def client_for(uri: str) -> MlflowClient:
    """A client on the store at ``uri`` (also made the process-wide default).

    Opening an SQLite store runs its schema migrations; two processes doing that at once
    on a fresh file break each other, so they take turns under a lock file beside it.
    """
    uri = resolve_uri(uri)
    mlflow.set_tracking_uri(uri)
    if uri in _clients:
        return _clients[uri]
    if not uri.startswith("sqlite:///"):
        return _clients.setdefault(uri, MlflowClient(tracking_uri=uri))
    lock_path = Path(uri[len("sqlite:///") :] + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # opens the store: migrations run here
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return _clients.setdefault(uri, client)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """The id of experiment ``name``, created (with its artifact folder) if missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(artifact_root))
    except mlflow.exceptions.MlflowException:
        # Another process created it between our look-up and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


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


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler: a terminated job ends its run KILLED, as Ctrl-C does."""


@contextlib.contextmanager
def run(
    client: MlflowClient,
    experiment_id: str,
    run_name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
) -> Iterator[str]:
    """Create a run and yield its id; end it FINISHED, FAILED (error recorded) or KILLED.

    No exit path leaves the run RUNNING: an exception marks it FAILED with the error as
    a tag and ``error.txt``; Ctrl-C or SIGTERM mark it KILLED. The exception propagates.
    """
    all_tags = {**git_state(), **lineage(), **tags}
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    created = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    run_id = created.info.run_id

    def on_sigterm(signum: int, frame: Any) -> None:
        raise Terminated

    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield run_id
    except KeyboardInterrupt:
        client.set_tag(run_id, "error", "interrupted")
        client.set_terminated(run_id, "KILLED")
        raise
    except BaseException as exc:
        with contextlib.suppress(Exception):
            client.set_tag(run_id, "error", f"{type(exc).__name__}: {exc}"[:5000])
            client.log_text(run_id, traceback.format_exc(), "error.txt")
        client.set_terminated(run_id, "FAILED")
        raise
    else:
        client.set_terminated(run_id, "FINISHED")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts to dotted keys; lists and scalars become their string form."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = json.dumps(value) if isinstance(value, list) else str(value)
    return flat


def log_config(
    client: MlflowClient, run_id: str, config: Mapping[str, Any], overrides: list[str]
) -> None:
    """Every config value as a param (dotted keys), and the config and overrides as YAML."""
    import yaml  # a dependency of omegaconf and mlflow

    params = [Param(k, v) for k, v in sorted(flatten(config).items())]
    for i in range(0, len(params), PARAM_BATCH):
        client.log_batch(run_id, params=params[i : i + PARAM_BATCH])
    client.log_text(run_id, yaml.safe_dump(dict(config), sort_keys=False), "config/config.yaml")
    client.log_text(run_id, yaml.safe_dump(list(overrides)), "config/overrides.yaml")


def log_series(client: MlflowClient, run_id: str, columns: Mapping[str, np.ndarray]) -> None:
    """Per-iteration metrics with step = iteration, in batches of up to 1000 values."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, float(v), now, step)
        for key, values in columns.items()
        for step, v in enumerate(values)
    ]
    for i in range(0, len(metrics), METRIC_BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + METRIC_BATCH])


def log_summary(client: MlflowClient, run_id: str, values: Mapping[str, float | None]) -> None:
    """Summary metrics; a missing or non-finite value is left out, never logged."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(k, float(v), now, 0) for k, v in values.items() if v is not None and math.isfinite(v)
    ]
    client.log_batch(run_id, metrics=metrics)


def log_tags(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_dataset(client: MlflowClient, run_id: str, dataset: Dataset) -> None:
    """The training data as an MLflow dataset input (with its digest)."""
    ds = mlflow.data.from_numpy(
        dataset.X,
        targets=dataset.t,
        name=f"{dataset.recipe}-{dataset.X.shape[0]}x{dataset.X.shape[1]}-seed{dataset.seed}",
        digest=dataset.digest,
    )
    from mlflow.entities import DatasetInput, InputTag

    client.log_inputs(
        run_id,
        datasets=[
            DatasetInput(ds._to_mlflow_entity(), [InputTag("mlflow.data.context", "training")])
        ],
    )


def log_files(client: MlflowClient, run_id: str, folder: Path, artifact_path: str | None) -> None:
    """Every file under ``folder`` as artifacts under ``artifact_path``."""
    client.log_artifacts(run_id, str(folder), artifact_path)


def log_json(client: MlflowClient, run_id: str, obj: Any, artifact_file: str) -> None:
    client.log_dict(run_id, obj, artifact_file)


def download(client: MlflowClient, run_id: str, artifact_path: str, dest: Path) -> Path:
    """Fetch one artifact (file or folder) of a run into ``dest``; return its local path."""
    dest.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, artifact_path, str(dest)))


def get_run(client: MlflowClient, run_id: str):
    """The run, or LookupError with a one-line reason if the store has no such run."""
    try:
        return client.get_run(run_id)
    except mlflow.exceptions.MlflowException as exc:
        raise LookupError(f"no run {run_id!r} in {client.tracking_uri}") from exc


def start_parent(
    client: MlflowClient, experiment_id: str, run_name: str, tags: Mapping[str, str]
) -> str:
    """Create a sweep's parent run (left RUNNING until ``end_run``); return its id."""
    return client.create_run(
        experiment_id, run_name=run_name, tags={**git_state(), **tags}
    ).info.run_id


def end_run(client: MlflowClient, run_id: str, status: str) -> None:
    client.set_terminated(run_id, status)


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    """Every run whose parent is ``parent_run_id``, oldest first."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def metric_history(client: MlflowClient, run_id: str, key: str) -> np.ndarray:
    """A metric's values ordered by step."""
    history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
    return np.array([m.value for m in history], dtype=float)


def log_table(client: MlflowClient, run_id: str, table: Mapping[str, list], path: str) -> None:
    client.log_table(run_id, data=dict(table), artifact_file=path)


def log_text(client: MlflowClient, run_id: str, text: str, path: str) -> None:
    client.log_text(run_id, text, path)


MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
# Our model's input is a plain float array, checked by its tensor signature; MLflow's
# nudge towards type hints on predict() does not apply.
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")


def log_model(run_id: str, wx: float, wrec: float, example: np.ndarray) -> None:
    """The trained network as the run's pyfunc model ``model`` (``runs:/RUN_ID/model``),
    with a signature and an input example. Call it last: it resumes the run with the
    fluent API, which ends it FINISHED."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    example = np.atleast_2d(np.asarray(example, dtype=float))
    # any number of sequences of any length in, one sum per sequence out
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float64"), (-1, -1))]),
        outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]),
    )
    with mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None):
        mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            model_config={"wx": float(wx), "wrec": float(wrec)},
            signature=signature,
            input_example=example,
            pip_requirements=[f"numpy=={version('numpy')}", f"mlflow=={version('mlflow')}"],
        )


@functools.cache
def lineage() -> dict[str, str]:
    """What it takes to reproduce a run: library versions and the lock file's hash."""
    tags = {
        f"version.{pkg}": version(pkg)
        for pkg in ("numpy", "hydra-core", "omegaconf", "mlflow", "matplotlib")
    }
    lock = Path(__file__).resolve().parents[2] / "uv.lock"
    if lock.exists():
        tags["uv_lock_sha256"] = hashlib.sha256(lock.read_bytes()).hexdigest()
    return tags
