"""MLflow's process-wide ("fluent") state, which belongs to the caller of rnnlab's Python
API: its tracking URI, active experiment and stack of active runs, saved and put back
(``saved_fluent_state``), and its active run (``caller_run``). rnnlab itself never uses
them: its runs go through an explicit client and run id. MLflow 3 keeps this state in
private names (``_tracking_uri``, ``_active_experiment_id``, ``_active_run_stack``);
``mlflow.set_tracking_uri`` would also write ``MLFLOW_TRACKING_URI``, which is the
caller's too."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import mlflow
from mlflow.tracking import fluent
from mlflow.tracking._tracking_service import utils as tracking_utils

from rnnlab.store import uris


@contextlib.contextmanager
def saved_fluent_state() -> Iterator[None]:
    """MLflow's process-wide tracking URI, active experiment and active runs as they
    were before the block, put back after it (whatever the block did to them)."""
    uri = tracking_utils._tracking_uri
    experiment = fluent._active_experiment_id
    active = list(fluent._active_run_stack.get())
    try:
        yield
    finally:
        tracking_utils._tracking_uri = uri
        fluent._active_experiment_id = experiment
        fluent._active_run_stack.set(active)


def caller_run(tracking_uri: str) -> tuple[str, str] | None:
    """(run id, experiment id) of the caller's active MLflow run, if it is in the store
    at ``tracking_uri`` (the caller's process-wide tracking URI names the same store)."""
    active = mlflow.active_run()
    if active is None:
        return None
    if uris.resolve_uri(mlflow.get_tracking_uri()) != uris.resolve_uri(tracking_uri):
        return None
    return active.info.run_id, active.info.experiment_id
