"""What a job produces: a training job's result (the dataset, its gradient check, the
trajectory, the curves and the test), the run it was recorded in, and the series and
summary keys every training run logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnlab.core.data import Dataset
from rnnlab.core.gradcheck import GradCheck
from rnnlab.core.train import Trajectory

SUMMARY_KEYS = (
    "log10_final_loss",
    "final_loss",
    "final_wx",
    "final_wrec",
    "test_output",
    "test_expected",
    "test_error",
    "gradcheck_rel_error_wx",
    "gradcheck_rel_error_wrec",
    "iterations",
    "diverged",
    "diverged_at",
    "valley_at",
)

Curves = Mapping[str, tuple[float, float, np.ndarray]]


class GradientCheckFailed(RuntimeError):
    """BPTT's gradient disagrees with central differences: training would be wrong."""

    def __init__(self, check: GradCheck) -> None:
        self.check = check
        super().__init__(check.summary())

    def __reduce__(self):  # pickled with its check (the worker hands it to the recorder)
        return (GradientCheckFailed, (self.check,))


def series(
    columns: Mapping[str, np.ndarray], points: int | None = None
) -> list[tuple[str, float, int]]:
    """Per-iteration metrics (key, value, step = the index in the series). With ``points``,
    a longer series is thinned to every k-th value (k = ceil((n - 1) / (points - 1))) and
    its last: at most ``points`` (+1) rows, the chart keeps its shape and its end."""
    metrics = []
    for key, values in columns.items():
        values = np.asarray(values, dtype=float)
        steps = np.arange(len(values))
        if points is not None and len(values) > points:
            stride = -(-(len(values) - 1) // (points - 1))
            steps = np.union1d(steps[::stride], [len(values) - 1])
        metrics += [
            (key, v, s) for s, v in zip(steps.tolist(), values[steps].tolist(), strict=True)
        ]
    return metrics


def scalars(values: Mapping[str, float | None]) -> list[tuple[str, float, int]]:
    """Summary metrics at step 0; a missing or non-finite value is left out."""
    return [(k, float(v), 0) for k, v in values.items() if v is not None and np.isfinite(v)]


def objective(trajectory: Trajectory) -> float:
    """A trajectory's final loss as a sweeper's objective: inf if it diverged or has none."""
    loss = trajectory.final_loss
    return float("inf") if trajectory.diverged or loss is None else float(loss)


@dataclass
class JobResult:
    """What ``compute`` makes of a config: everything a run records."""

    config: dict[str, Any]
    dataset: Dataset
    gradcheck: GradCheck
    trajectory: Trajectory
    curves: Curves
    test_output: float

    @property
    def summary(self) -> dict[str, float]:
        """The run's summary metrics. A diverged run has no final loss, weights or test
        output (where it stopped is not a result; it is in its history), only where it
        diverged: so a comparison of final values is not scaled to a blow-up."""
        traj, check = self.trajectory, self.gradcheck
        # MLflow's compare page colours its parallel coordinates by the first metric every
        # compared run shares: the final loss's log10 (a linear axis for the bar charts and
        # parallel coordinates that offer no log scale; none for an exact 0), else diverged
        loss = None if traj.diverged else traj.final_loss
        values: dict[str, float | None] = {
            "log10_final_loss": float(np.log10(loss)) if loss else None,
            "diverged": float(traj.diverged),
            "iterations": float(traj.iterations),
        }
        valley = np.flatnonzero(traj.loss < self.config.get("valley_loss", 0.2))
        if valley.size and not traj.diverged:  # the first point in the lab's valley
            values["valley_at"] = float(valley[0])
        if traj.diverged and traj.diverged_at is not None:
            values["diverged_at"] = float(traj.diverged_at)
        else:
            expected = float(np.sum(self.config["data"]["test_sequence"]))
            values |= {
                "final_loss": traj.final_loss,
                "final_wx": float(traj.final_w[0]),
                "final_wrec": float(traj.final_w[1]),
                "test_output": self.test_output,
                "test_expected": expected,
                "test_error": abs(self.test_output - expected),
            }
        values["gradcheck_rel_error_wx"] = check.rel_error["wx"]
        values["gradcheck_rel_error_wrec"] = check.rel_error["wrec"]
        return {k: v for k, v in values.items() if v is not None and np.isfinite(v)}

    @property
    def objective(self) -> float:
        """What a job returns to a sweeper to minimise (Optuna's trial value): the final
        loss, or inf for a run that diverged (its last logged loss comes before the blow-up
        and would make a diverging setting look good)."""
        return objective(self.trajectory)


@dataclass
class RunResult:
    """What one job produced, and where it is recorded."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    config: dict[str, Any]
    trajectory: Trajectory
    gradcheck: GradCheck
    summary: dict[str, float] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        value = self.trajectory.final_loss
        return float("inf") if value is None else float(value)

    @property
    def objective(self) -> float:
        """The job's objective (``JobResult.objective``)."""
        return objective(self.trajectory)
