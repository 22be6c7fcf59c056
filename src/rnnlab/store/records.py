"""A logged run read back from its artifacts (config, data, trajectory, gradient curves),
bit for bit: floats are written with 17 significant digits."""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rnnlab.core.data import Dataset
from rnnlab.core.gradcheck import GradCheck
from rnnlab.core.train import Trajectory
from rnnlab.store import query, uris


class RecordError(LookupError):
    """A run id that is not in the store, or a run without the artifacts needed."""


@dataclass
class RunRecord:
    run_id: str
    experiment_id: str
    config: dict[str, Any]
    dataset: Dataset
    trajectory: Trajectory
    curves: dict[str, tuple[float, float, np.ndarray]]
    gradcheck: GradCheck
    summary: dict[str, Any]


def read_trajectory(csv_path: Path, summary: dict[str, Any]) -> Trajectory:
    """The trajectory from ``trajectory.csv`` (one row per point; the last row's steps
    are empty) and ``summary.json``."""
    with open(csv_path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        body = f.read()
    rows = (
        np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2, encoding="utf-8").reshape(
            -1, len(header)
        )
        if body.strip()
        else np.empty((0, len(header)))
    )
    col = {name: rows[:, i] for i, name in enumerate(header)}
    n = max(len(rows) - 1, 0)
    return Trajectory(
        start=np.array(summary.get("start", summary["final_w"]), dtype=float),
        w=np.column_stack([col["wx"], col["wrec"]]),
        loss=col["loss"],
        grad=np.column_stack([col["grad_wx"], col["grad_wrec"]]),
        step=np.column_stack([col["step_wx"][:n], col["step_wrec"][:n]]),
        status=summary["status"],
        diverged_at=summary.get("diverged_at"),
    )


def read_dataset(csv_path: Path, config: dict[str, Any]) -> Dataset:
    table = np.loadtxt(csv_path, delimiter=",", skiprows=1, ndmin=2, encoding="utf-8")
    return Dataset(
        X=table[:, :-1],
        t=table[:, -1],
        recipe=config["data"]["recipe"],
        seed=config["data"]["seed"],
    )


def read_curves(json_path: Path) -> dict[str, tuple[float, float, np.ndarray]]:
    raw = json.loads(json_path.read_text(encoding="utf-8"))
    return {
        name: (float(wx), float(wrec), np.array(raw["gradients"][name], dtype=float))
        for name, (wx, wrec) in raw["points"].items()
    }


def load_record(client, run_id: str) -> RunRecord:
    """Read everything the run logged for its figures and summary."""
    try:
        run = query.get_run(client, run_id)
    except LookupError as exc:
        raise RecordError(str(exc)) from None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            config_file = query.download(client, run_id, "config/config.yaml", Path(tmp))
            data_dir = query.download(client, run_id, "data", Path(tmp))
            results = query.download(client, run_id, "results", Path(tmp))
        except uris.StoreError:
            raise  # the artifacts are not where the store says: that, in one line
        except Exception as exc:  # MLflow raises several kinds for a missing artifact
            raise RecordError(
                f"run {run_id} has no logged config/results to read ({type(exc).__name__})"
            ) from None
        return _parse(run, config_file, data_dir, results)


def _parse(run, config_file: Path, data_dir: Path, results: Path) -> RunRecord:
    """The record from the downloaded files; RecordError naming the file that is not what
    rnnlab wrote (changed by hand, cut short) instead of a traceback."""
    from rnnlab.config import ConfigError, check_plots

    run_id = run.info.run_id
    reading = "config/config.yaml"
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        try:
            check_plots(config["plots"])  # what the figures are drawn with
        except ConfigError as exc:
            raise RecordError(f"run {run_id}'s logged config/config.yaml has {exc}") from None
        reading = "results/summary.json"
        summary = json.loads((results / "summary.json").read_text(encoding="utf-8"))
        reading = "results/gradcheck.json"
        check = json.loads((results / "gradcheck.json").read_text(encoding="utf-8"))
        check.pop("passed", None)
        gradcheck = GradCheck(**{**check, "at": tuple(check["at"])})
        reading = "data/dataset.csv"
        dataset = read_dataset(data_dir / "dataset.csv", config)
        reading = "results/trajectory.csv"
        trajectory = read_trajectory(results / "trajectory.csv", summary)
        values = (trajectory.w, trajectory.loss, trajectory.grad, trajectory.step, dataset.X)
        if not all(np.all(np.isfinite(v)) for v in values):
            raise ValueError("it holds values that are not finite numbers")
        reading = "results/gradient_over_time.json"
        curves = read_curves(results / "gradient_over_time.json")
    except RecordError:
        raise
    except Exception as exc:  # a file that is not what rnnlab wrote
        why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise RecordError(
            f"run {run_id}'s logged {reading} cannot be read ({why}): was it changed or cut "
            "short after the run?"
        ) from None
    return RunRecord(
        run_id=run_id,
        experiment_id=run.info.experiment_id,
        config=config,
        dataset=dataset,
        trajectory=trajectory,
        curves=curves,
        gradcheck=gradcheck,
        summary=summary,
    )
