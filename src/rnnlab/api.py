"""The Python API: ``run``, ``load`` and ``compare`` for scripts and notebooks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rnnlab import console, runner, tracking
from rnnlab.config import compose as compose_config
from rnnlab.records import load_record

console.quiet()  # MLflow's log lines and progress bars off (RNNLAB_VERBOSE=1 keeps them)


def run(overrides: Sequence[str] = (), output_dir: str | Path | None = None) -> runner.RunResult:
    """Compose the config the ``rnnlab`` command would (same overrides, same grammar),
    train, log one MLflow run, and return its ``RunResult``: run id, config, trajectory
    arrays, gradient check and summary numbers."""
    cfg = compose_config(list(overrides))
    out = (
        Path(output_dir)
        if output_dir
        else (Path("outputs") / "api" / datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f"))
    )
    return runner.execute(cfg, out, list(overrides))


def _uri(tracking_uri: str | None) -> str:
    return tracking.resolve_uri(tracking_uri or tracking.default_uri())


def load(run_id: str, tracking_uri: str | None = None) -> runner.RunResult:
    """A logged run read back from the store (no retraining), as a ``RunResult``."""
    uri = _uri(tracking_uri)
    record = load_record(tracking.client_for(uri), run_id)
    summary = {
        k: float(v) for k, v in record.summary.items() if k in runner.SUMMARY_KEYS and v is not None
    }
    return runner.RunResult(
        run_id=run_id,
        experiment_id=record.experiment_id,
        tracking_uri=uri,
        config=record.config,
        trajectory=record.trajectory,
        gradcheck=record.gradcheck,
        summary=summary,
    )


def compare(runs: str | Sequence[str], tracking_uri: str | None = None):
    """A pandas DataFrame, one row per run: its params (dotted config keys), summary
    metrics and tags. ``runs`` is a list of run ids, or one sweep parent's id (its
    children)."""
    import pandas as pd

    client = tracking.client_for(_uri(tracking_uri))
    if isinstance(runs, str):
        parent = tracking.get_run(client, runs)
        found = tracking.child_runs(client, parent.info.experiment_id, runs)
        if not found:
            found = [parent]
    else:
        found = [tracking.get_run(client, rid) for rid in runs]
    rows = []
    for r in found:
        row = {"run_id": r.info.run_id, "run_name": r.info.run_name, "status": r.info.status}
        row.update({k: _number(v) for k, v in r.data.params.items()})
        row.update(r.data.metrics)
        row.update({f"tag.{k}": v for k, v in r.data.tags.items() if not k.startswith("mlflow.")})
        rows.append(row)
    return pd.DataFrame(rows).set_index("run_id")


def _number(value: str):
    try:
        return float(value) if any(c in value for c in ".eE") else int(value)
    except ValueError:
        return value
