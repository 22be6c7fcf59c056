"""Experiments: looked up or created (a model-training experiment, its artifact
folder checked), and their tags updated safely when processes write them at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from rnnlab.store.log import EXPERIMENT_KIND_TAG, NOTE_TAG
from rnnlab.store.uris import StoreError, artifact_location, is_server, redact, resolve_uri

DEFAULT_EXPERIMENT = "rnnlab"  # conf/tracking's, where MLFLOW_EXPERIMENT_NAME is not set


def _experiment_by_id(client: MlflowClient, experiment_id: str) -> str:
    """The id of the live experiment ``MLFLOW_EXPERIMENT_ID`` names; StoreError if none."""
    where = redact(client.tracking_uri)
    try:
        experiment = client.get_experiment(experiment_id)
    except mlflow.exceptions.MlflowException:
        experiment = None
    if experiment is None or experiment.lifecycle_stage == "deleted":
        state = "is deleted" if experiment is not None else "does not exist"
        raise StoreError(
            f"MLFLOW_EXPERIMENT_ID={experiment_id!r} names no experiment to record in: "
            f"experiment {experiment_id} {state} in {where}; unset it, or name one with "
            "MLFLOW_EXPERIMENT_NAME or tracking.experiment"
        )
    return str(experiment.experiment_id)


def ensure_experiment(
    client: MlflowClient, name: str, artifact_root: str | None, description: str | None = None
) -> str:
    """The id of experiment ``name``, created (with its artifact folder and description)
    if missing; a description is added to an existing experiment that has none. A local
    artifact folder that cannot be written is refused (StoreError) before an experiment
    is created with it: it would stay the experiment's for good. ``MLFLOW_EXPERIMENT_ID``
    (MLflow's variable) names an existing experiment in place of the default name
    (``rnnlab``) where ``MLFLOW_EXPERIMENT_NAME`` is not set and the store is the one
    ``MLFLOW_TRACKING_URI`` names (an id is a store's: ``mlflow.set_experiment`` in a
    notebook sets it for the notebook's store); StoreError if it has none."""
    by_id = os.environ.get("MLFLOW_EXPERIMENT_ID", "").strip()
    env_store = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if (
        name == DEFAULT_EXPERIMENT
        and by_id
        and env_store
        and not os.environ.get("MLFLOW_EXPERIMENT_NAME")
        and resolve_uri(env_store) == resolve_uri(client.tracking_uri)
    ):
        return _experiment_by_id(client, by_id)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        uri, eid = redact(client.tracking_uri), experiment.experiment_id
        raise StoreError(
            f"tracking.experiment={name!r} is a deleted experiment (id {eid}) in {uri}: "
            f"restore it (MLFLOW_TRACKING_URI={uri} uv run mlflow experiments restore "
            f"--experiment-id {eid}), delete it for good (uv run mlflow gc "
            f"--backend-store-uri {uri} --experiment-ids {eid}), or choose another "
            "tracking.experiment"
        )
    if is_server(client.tracking_uri):
        artifact_root = None  # a tracking server keeps artifacts where it is told to
    if experiment is None:
        location = artifact_location(artifact_root)
        problem = _unwritable(location)
        if problem:
            raise StoreError(
                f"tracking.artifact_root={artifact_root!r} is not allowed: a folder rnnlab "
                f"can write ({problem})"
            )
        # a model-training experiment: the UI opens it on its runs, not the GenAI overview
        tags = {EXPERIMENT_KIND_TAG: "custom_model_development"}
        if description:
            tags[NOTE_TAG] = description
        try:
            return client.create_experiment(name, artifact_location=location, tags=tags)
        except mlflow.exceptions.MlflowException:
            # Another process created it between our look-up and create.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    problem = _unwritable(experiment.artifact_location)
    if problem:
        raise StoreError(
            f"experiment {name!r} keeps its artifacts in {experiment.artifact_location}, "
            f"which cannot be written ({problem}): make it writable, or use another "
            "tracking.experiment"
        )
    if description:
        update_experiment_tag(
            client, experiment.experiment_id, NOTE_TAG, lambda old: None if old else description
        )
    return experiment.experiment_id


def update_experiment_tag(
    client: MlflowClient,
    experiment_id: str,
    key: str,
    update: Callable[[str | None], str | None],
    attempts: int = 5,
) -> None:
    """Set experiment tag ``key`` to ``update(value now)`` (None: leave it), safely when
    other processes update it at once. MLflow's ``set_experiment_tag`` reads, then
    inserts: two writers of a new tag race, and the later fails (a UNIQUE constraint in
    SQL stores); a read-modify-write can also lose the other's change. So it reads,
    writes, reads back, and goes round again (``attempts`` times at most) until the tag
    holds a value ``update`` leaves alone. Raises the store's last error when it never
    settles."""
    for attempt in range(attempts):
        value = update(client.get_experiment(experiment_id).tags.get(key))
        if value is None:
            return
        try:
            client.set_experiment_tag(experiment_id, key, value)
        except mlflow.exceptions.MlflowException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))  # another process wrote it at this moment
            continue
        if update(client.get_experiment(experiment_id).tags.get(key)) is None:
            return


def _unwritable(location: str | None) -> str | None:
    """Why a local artifact location cannot be written (None if it can, or is remote)."""
    if not location or not location.startswith("file:"):
        return None
    from urllib.parse import unquote, urlparse

    folder = Path(unquote(urlparse(location).path))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".rnnlab-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None
