"""The trained network as the run's pyfunc model ``model`` (``runs:/RUN_ID/model``), saved and
uploaded through the client: a logged model where the store has MLflow 3's, else (a 2.x
server) the run's artifacts."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from rnnlab.store import client as client_mod

MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
NAME = "model"


@contextlib.contextmanager
def _model_files_only() -> Iterator[None]:
    """While a model is saved: MLflow copies no uv project files (``uv.lock``,
    ``pyproject.toml``: it would find the current folder's) and Python writes no bytecode
    into the model's folder (MLflow imports the model's code to check it; rnnlab turns
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


def log_model(
    client: MlflowClient, experiment_id: str, run_id: str, wx: float, wrec: float, example
) -> None:
    """The network with weights (``wx``, ``wrec``) as the run's model ``model``; ``example``
    (one sequence, or rows of them) is its input example. Raises what the store raises."""
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model, ModelSignature
    from mlflow.types import Schema, TensorSpec

    example = np.atleast_2d(np.asarray(example, dtype=float))
    # any number of sequences of any length in, one sum per sequence out
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float64"), (-1, -1))]),
        outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]),
    )
    logged = None
    if client_mod.has_logged_models(client):
        logged = client.create_logged_model(experiment_id, name=NAME, source_run_id=run_id)
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        description = Model(
            artifact_path=logged.artifact_location,
            run_id=run_id,
            model_id=logged.model_id,
            model_uuid=logged.model_id,
        )
    else:
        description = Model(artifact_path=NAME, run_id=run_id)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.json"
        weights.write_text(json.dumps({"wx": float(wx), "wrec": float(wrec)}), encoding="utf-8")
        folder = Path(tmp) / NAME
        with _model_files_only():
            mlflow.pyfunc.save_model(
                str(folder),
                python_model=str(MODEL_CODE),
                artifacts={"weights": str(weights)},
                signature=signature,
                input_example=example,
                pip_requirements=[f"numpy=={version('numpy')}", f"mlflow=={version('mlflow')}"],
                mlflow_model=description,
            )
        for cache in list(folder.rglob("__pycache__")):
            shutil.rmtree(cache)
        if logged is not None:
            client.log_model_artifacts(logged.model_id, str(folder))
        else:
            client.log_artifacts(run_id, str(folder), NAME)
