"""A job's files, from its result alone: the config, the trajectory and summary as
CSV/JSON, the figures (``rnnlab-plot`` draws them again from a logged run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.config import SERIES
from rnnlab.core.data import Dataset
from rnnlab.core.train import Trajectory
from rnnlab.jobs.compute import optimizer_label
from rnnlab.jobs.results import Curves, JobResult

# --- 2. write ---------------------------------------------------------------------------


def write_config(config: Mapping[str, Any], overrides: Sequence[str], folder: Path) -> Path:
    """The resolved config (credentials in URIs hidden) and the overrides that made it,
    as ``folder/config/{config,overrides}.yaml``: logged first, so that even a run that
    crashes can be rerun."""
    from rnnlab import console
    from rnnlab.store.uris import redact

    (folder / "config").mkdir(parents=True, exist_ok=True)
    config = dict(config)
    if "tracking" in config:
        config["tracking"] = {**config["tracking"], "uri": redact(config["tracking"]["uri"])}
    (folder / "config" / "config.yaml").write_text(_yaml(config), encoding="utf-8")
    (folder / "config" / "overrides.yaml").write_text(
        _yaml([console.redact(o) for o in overrides]), encoding="utf-8"
    )
    return folder / "config"


def write(result: JobResult, folder: Path, safe_point: Callable[[], None] | None = None) -> Path:
    """Everything the run made, as files under ``folder`` (its artifact layout): data/,
    results/ and figures/. Floats are written with 17 significant digits (exact round
    trip), so a run read back from these files is the run."""
    for sub in ("data", "results"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    X, t = result.dataset.X, result.dataset.t
    header = ",".join([f"x{k}" for k in range(1, X.shape[1] + 1)] + ["t"])
    np.savetxt(
        folder / "data" / "dataset.csv",
        np.column_stack([X, t]),
        delimiter=",",
        header=header,
        comments="",
        fmt="%.17g",
        encoding="utf-8",
    )
    write_trajectory(result.trajectory, folder / "results" / "trajectory.csv")
    curves = result.curves
    grads = {
        "points": {name: [wx, wrec] for name, (wx, wrec, _) in curves.items()},
        "gradients": {name: g.tolist() for name, (_, _, g) in curves.items()},
    }
    (folder / "results" / "gradient_over_time.json").write_text(json.dumps(grads), encoding="utf-8")
    check = result.gradcheck
    (folder / "results" / "gradcheck.json").write_text(
        json.dumps(asdict(check) | {"passed": check.passed}, indent=1), encoding="utf-8"
    )
    traj = result.trajectory
    summary = {
        **result.summary,
        "status": traj.status,
        "diverged_at": traj.diverged_at,
        "start": traj.start.tolist(),
        "final_w": traj.final_w.tolist(),
    }
    (folder / "results" / "summary.json").write_text(
        json.dumps(summary, indent=1), encoding="utf-8"
    )
    draw_figures(
        folder / "figures",
        result.config["plots"],
        optimizer_label(result.config["optimizer"]),
        result.dataset,
        traj,
        curves,
        safe_point,
    )
    return folder


def write_trajectory(trajectory: Trajectory, path: Path) -> None:
    """One row per point (iteration k = 0..n); the last row has no update (nan steps)."""
    cols = trajectory.columns()
    n = len(trajectory.loss)
    step = {k: np.append(cols[k], [np.nan] * (n - len(cols[k]))) for k in ("step_wx", "step_wrec")}
    np.savetxt(
        path,
        np.column_stack([np.arange(n)] + [step.get(s, cols[s]) for s in SERIES]),
        delimiter=",",
        header=",".join(("iteration", *SERIES)),
        comments="",
        fmt=["%d"] + ["%.17g"] * len(SERIES),
        encoding="utf-8",
    )


def draw_figures(
    folder: Path,
    plot_cfg: Mapping[str, Any],
    label: str,
    dataset: Dataset,
    trajectory: Trajectory,
    curves: Curves,
    safe_point: Callable[[], None] | None = None,
) -> list[Path]:
    """Draw the configured figures into ``folder``; return the files written;
    ``safe_point()`` before each."""
    if not plot_cfg["enabled"] or not plot_cfg["figures"]:
        return []
    from rnnlab import plots  # matplotlib only where figures are drawn

    X, t = dataset.X, dataset.t
    res, fmt, dpi = plot_cfg["resolution"], plot_cfg["format"], plot_cfg["dpi"]
    cols = trajectory.columns()
    diverged_at = trajectory.diverged_at if trajectory.diverged else None
    makers = {
        "loss_surface": lambda: plots.loss_surface(
            X, t, plot_cfg["points"], plot_cfg["overview"], plot_cfg["zoom"], res
        ),
        "gradient_over_time": lambda: plots.gradient_over_time(curves),
        "trajectory": lambda: plots.trajectory(
            X,
            t,
            trajectory.w,
            label,
            plot_cfg["overview"],
            plot_cfg["trajectory_zoom"],
            res,
            diverged_at,
        ),
        "training_curves": lambda: plots.training_curves(cols, label, diverged_at),
        "steps": lambda: plots.steps(cols, label),
    }
    written = []
    for name in plot_cfg["figures"]:
        if name in ("trajectory", "training_curves", "steps") and len(trajectory.loss) == 0:
            continue  # diverged at the start: no path or series to draw
        if name == "steps" and trajectory.iterations == 0:
            continue
        if name == "gradient_over_time" and not curves:
            continue
        if safe_point is not None:
            safe_point()
        fig = makers[name]()
        written.append(plots.save(fig, folder / f"{name}.{fmt}", fmt, dpi))
    return written


def _yaml(obj: Any) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False)
