"""The store layer: everything MLflow, through an explicit client and run id. MLflow's
settings are made here, before any of its modules imports mlflow."""

from __future__ import annotations

import os


def settings() -> None:
    """MLflow settings rnnlab runs with, unless the user set them (environment variables:
    MLflow reads them per request). A tracking server that does not answer should cost
    seconds, not MLflow's default of 7 retries with a 2x backoff and a 120 s timeout
    (about 4 minutes): a request waits at most 5 s to connect or for an answer, and is
    tried 3 times (~5 s when the server is down, <20 s when its host does not answer).
    Our commands print where a run is: MLflow's own "View run ... at" lines (http
    stores) would follow every child of a sweep. No telemetry (a closed network).
    The Python API restores the environment it found after each call."""
    for key, value in (
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "5"),
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0.5"),
        ("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true"),
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ):
        os.environ.setdefault(key, value)


settings()  # before MLflow's import (which reads the telemetry setting)
