"""One job: config in, trained network and one MLflow run out.

``execute`` is the plain function behind the ``@hydra.main`` entry point (and behind
the Python API): it checks the config, opens the run, makes the data, checks the
gradient, trains, evaluates, draws and logs. It returns a ``RunResult`` whose
``final_loss`` is what a sweeper minimises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from rnnlab import plots, rnn, tracking
from rnnlab.config import to_container, validate
from rnnlab.data import Dataset, make_dataset
from rnnlab.gradcheck import GradCheck, gradient_check
from rnnlab.optim import GradientDescent, Optimizer, RProp
from rnnlab.train import Trajectory, optimise, predict

SERIES = ("loss", "wx", "wrec", "grad_wx", "grad_wrec", "step_wx", "step_wrec")
SUMMARY_KEYS = (
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
)


class GradientCheckFailed(RuntimeError):
    """BPTT's gradient disagrees with central differences: training would be wrong."""


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


def build_optimizer(cfg: Mapping[str, Any]) -> Optimizer:
    """The step rule named by ``cfg['name']`` with the config's hyperparameters."""
    params = {k: v for k, v in cfg.items() if k != "name"}
    if cfg["name"] == "rprop":
        return RProp(**params)
    return GradientDescent(**params)


def optimizer_label(cfg: Mapping[str, Any]) -> str:
    """A human name for figures: 'RProp' or 'gradient descent (lr=1e-05)'."""
    if cfg["name"] == "rprop":
        return "RProp"
    return f"gradient descent (lr={cfg['learning_rate']:g})"


def figure_inputs_to_files(
    folder: Path,
    dataset: Dataset,
    trajectory: Trajectory,
    curves: Mapping[str, tuple[float, float, np.ndarray]],
) -> None:
    """Write everything the figures need as plain files (logged with the run)."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "results").mkdir(parents=True, exist_ok=True)
    T = dataset.X.shape[1]
    header = ",".join([f"x{k}" for k in range(1, T + 1)] + ["t"])
    np.savetxt(
        folder / "data" / "dataset.csv",
        np.column_stack([dataset.X, dataset.t]),
        delimiter=",",
        header=header,
        comments="",
        fmt="%.17g",
    )
    cols = trajectory.columns()
    np.savetxt(
        folder / "results" / "trajectory.csv",
        np.column_stack([np.arange(trajectory.iterations)] + [cols[s] for s in SERIES]),
        delimiter=",",
        header=",".join(("iteration", *SERIES)),
        comments="",
        fmt=["%d"] + ["%.17g"] * len(SERIES),
    )
    grads = {
        "points": {name: [wx, wrec] for name, (wx, wrec, _) in curves.items()},
        "gradients": {name: g.tolist() for name, (_, _, g) in curves.items()},
    }
    (folder / "results" / "gradient_over_time.json").write_text(json.dumps(grads))


def draw_figures(
    folder: Path,
    plot_cfg: Mapping[str, Any],
    label: str,
    dataset: Dataset,
    trajectory: Trajectory,
    curves: Mapping[str, tuple[float, float, np.ndarray]],
) -> list[Path]:
    """Draw the configured figures into ``folder``; return the files written."""
    if not plot_cfg["enabled"]:
        return []
    X, t = dataset.X, dataset.t
    res, fmt, dpi = plot_cfg["resolution"], plot_cfg["format"], plot_cfg["dpi"]
    path = np.vstack([trajectory.w, trajectory.final_w[None, :]])
    cols = trajectory.columns()
    makers = {
        "loss_surface": lambda: plots.loss_surface(
            X, t, plot_cfg["points"], plot_cfg["overview"], plot_cfg["zoom"], res
        ),
        "gradient_over_time": lambda: plots.gradient_over_time(curves),
        "trajectory": lambda: plots.trajectory(
            X, t, path, label, plot_cfg["overview"], plot_cfg["trajectory_zoom"], res
        ),
        "training_curves": lambda: plots.training_curves(cols, label),
        "steps": lambda: plots.steps(cols, label),
    }
    written = []
    for name in plot_cfg["figures"]:
        if name in ("training_curves", "steps") and trajectory.iterations == 0:
            continue  # diverged at the start: no series to draw
        if name == "gradient_over_time" and not curves:
            continue
        fig = makers[name]()
        written.append(plots.save(fig, folder / f"{name}.{fmt}", fmt, dpi))
    return written


def gradient_curves(
    dataset: Dataset, points: Mapping[str, Sequence[float]]
) -> dict[str, tuple[float, float, np.ndarray]]:
    """The gradient over time (d loss / d S_k, k = 0..T) from each named point."""
    curves = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for name, (wx, wrec) in points.items():
            g = rnn.state_gradients(dataset.X, dataset.t, wx, wrec)
            if np.all(np.isfinite(g)):
                curves[name] = (float(wx), float(wrec), g)
    return curves


def _store(cfg: DictConfig, tracking_uri: str | None, experiment_id: str | None):
    """(client, absolute store URI, experiment id) for a job: the given URI and experiment
    (a sweep's), or the config's, the experiment created if missing."""
    tracking_uri = tracking.resolve_uri(tracking_uri or cfg.tracking.uri)
    client = tracking.client_for(tracking_uri)
    if experiment_id is None:
        experiment_id = tracking.ensure_experiment(
            client, cfg.tracking.experiment, cfg.tracking.artifact_root
        )
    return client, tracking_uri, experiment_id


def execute(
    cfg: DictConfig,
    output_dir: Path,
    overrides: Sequence[str] = (),
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
) -> RunResult:
    """Run one job as configured and record it as one MLflow run.

    Inside a sweep, ``parent_run_id`` and ``experiment_id`` come from the sweep (which
    created the store and experiment once, before any job); alone, the experiment named
    by ``tracking.experiment`` is looked up or created. ``tracking_uri`` (from the sweep,
    made absolute in the launching process) wins over ``tracking.uri``, whose relative
    path would otherwise be read against a worker's own directory.
    """
    validate(cfg)
    config = to_container(cfg)
    output_dir = Path(output_dir)
    client, tracking_uri, experiment_id = _store(cfg, tracking_uri, experiment_id)
    opt_cfg = config["optimizer"]
    tags = {
        "optimizer": opt_cfg["name"],
        "init": cfg.init.name,
        "data_recipe": cfg.data.recipe,
        "data_seed": str(cfg.data.seed),
        **(extra_tags or {}),
    }
    run_name = f"{opt_cfg['name']}-{cfg.init.name}"
    with tracking.run(client, experiment_id, run_name, tags, parent_run_id) as run_id:
        tracking.log_config(client, run_id, config, list(overrides))
        d = cfg.data
        dataset = make_dataset(d.recipe, d.n_samples, d.seq_len, d.seed)
        tracking.log_dataset(client, run_id, dataset)
        tracking.log_tags(client, run_id, {"data_digest": dataset.digest})

        g = cfg.gradcheck
        check = gradient_check(dataset.X, dataset.t, g.wx, g.wrec, g.eps, g.rtol)
        tracking.log_json(
            client, run_id, asdict(check) | {"passed": check.passed}, "results/gradcheck.json"
        )
        tracking.log_summary(
            client, run_id, {f"gradcheck_rel_error_{p}": check.rel_error[p] for p in ("wx", "wrec")}
        )
        if not check.passed:
            raise GradientCheckFailed(check.summary())

        trajectory = optimise(
            dataset.X,
            dataset.t,
            (cfg.init.wx, cfg.init.wrec),
            build_optimizer(opt_cfg),
            cfg.iterations,
            cfg.tolerance,
        )
        tracking.log_series(client, run_id, trajectory.columns())

        test_sequence = np.asarray(cfg.data.test_sequence, dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):
            test_output = float(predict(test_sequence, *trajectory.final_w)[0])
        expected = float(np.sum(test_sequence))
        summary = {
            "final_loss": trajectory.final_loss,
            "final_wx": float(trajectory.final_w[0]),
            "final_wrec": float(trajectory.final_w[1]),
            "test_output": test_output,
            "test_expected": expected,
            "test_error": abs(test_output - expected),
            "gradcheck_rel_error_wx": check.rel_error["wx"],
            "gradcheck_rel_error_wrec": check.rel_error["wrec"],
            "iterations": float(trajectory.iterations),
            "diverged": float(trajectory.diverged),
        }
        tracking.log_summary(client, run_id, summary)
        tracking.log_tags(client, run_id, {"status": trajectory.status})

        curves = gradient_curves(dataset, config["plots"]["points"])
        figure_inputs_to_files(output_dir, dataset, trajectory, curves)
        summary_file = {
            **{k: v for k, v in summary.items() if v is not None and np.isfinite(v)},
            "status": trajectory.status,
            "final_w": trajectory.final_w.tolist(),
        }
        (output_dir / "results" / "summary.json").write_text(json.dumps(summary_file, indent=1))
        draw_figures(
            output_dir / "figures",
            config["plots"],
            optimizer_label(opt_cfg),
            dataset,
            trajectory,
            curves,
        )
        for sub in ("data", "results", "figures"):
            if (output_dir / sub).is_dir():
                tracking.log_files(client, run_id, output_dir / sub, sub)
        if cfg.tracking.log_model and np.all(np.isfinite(trajectory.final_w)):
            tracking.log_model(run_id, *trajectory.final_w, test_sequence)

    return RunResult(
        run_id=run_id,
        experiment_id=experiment_id,
        tracking_uri=tracking_uri,
        config=config,
        trajectory=trajectory,
        gradcheck=check,
        summary={k: v for k, v in summary.items() if v is not None},
    )


def _basin_job(
    cfg: DictConfig, config: dict[str, Any], client, run_id: str, output_dir: Path
) -> dict[str, float]:
    """The basin-map task inside an open run: every start of the grid, every optimiser."""
    from tqdm import tqdm

    from rnnlab.basin import optimise_many

    b = config["basin"]
    d = cfg.data
    dataset = make_dataset(d.recipe, d.n_samples, d.seq_len, d.seed)
    tracking.log_dataset(client, run_id, dataset)
    n = b["resolution"]
    wx = np.linspace(b["bounds"][0], b["bounds"][1], n)
    wrec = np.linspace(b["bounds"][2], b["bounds"][3], n)
    starts = np.stack(np.meshgrid(wx, wrec), axis=-1).reshape(-1, 2)  # rows follow wrec
    maps: dict[str, dict[str, np.ndarray]] = {}
    summary: dict[str, float] = {}
    for name, opt_cfg in b["optimizers"].items():
        # a progress bar on a terminal; quiet (disable=None) in logs, pipes and tests
        with tqdm(total=len(starts), desc=f"basin map {name}", unit="start", disable=None) as bar:
            res = optimise_many(
                dataset.X,
                dataset.t,
                starts,
                build_optimizer(opt_cfg),
                cfg.iterations,
                b["tolerance"],
                b["chunk"],
                bar.update,
            )
        maps[name] = {
            "final_loss": res.final_loss.reshape(n, n),
            "first_converged": res.first_converged.reshape(n, n),
            "diverged_at": res.diverged_at.reshape(n, n),
        }
        its = res.first_converged[res.converged]
        summary[f"{name}_fraction_converged"] = float(res.converged.mean())
        summary[f"{name}_fraction_diverged"] = float(res.diverged.mean())
        summary[f"{name}_median_iterations_to_converge"] = (
            float(np.median(its)) if its.size else None
        )
    results = output_dir / "results"
    results.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        results / "basin_map.npz",
        wx=wx,
        wrec=wrec,
        **{f"{o}_{k}": v for o, m in maps.items() for k, v in m.items()},
    )
    tracking.log_summary(client, run_id, summary)
    if config["plots"]["enabled"]:
        p = config["plots"]
        fig = plots.basin_maps(maps, b["bounds"], p["points"], cfg.iterations, b["tolerance"])
        plots.save(fig, output_dir / "figures" / f"basin_map.{p['format']}", p["format"], p["dpi"])
    for sub in ("results", "figures"):
        if (output_dir / sub).is_dir():
            tracking.log_files(client, run_id, output_dir / sub, sub)
    return summary


def execute_basin(
    cfg: DictConfig,
    output_dir: Path,
    overrides: Sequence[str] = (),
    tracking_uri: str | None = None,
) -> dict[str, float]:
    """The basin-map task (``task=basin_map``) as one MLflow run; returns its metrics."""
    validate(cfg)
    config = to_container(cfg)
    client, _, experiment_id = _store(cfg, tracking_uri, None)
    tags = {
        "task": "basin_map",
        "data_recipe": cfg.data.recipe,
        "optimizers": ",".join(config["basin"]["optimizers"]),
    }
    with tracking.run(client, experiment_id, "basin_map", tags) as run_id:
        tracking.log_config(client, run_id, config, list(overrides))
        summary = _basin_job(cfg, config, client, run_id, Path(output_dir))
    summary["run_id"] = run_id
    return summary


def report(result: RunResult) -> str:
    """A short summary in the lab's words."""
    check, traj = result.gradcheck, result.trajectory
    lines = [
        f"Gradient check at ({check.at[0]:g}, {check.at[1]:g}): {check.summary()} "
        f"(relative error wx {check.rel_error['wx']:.1e}, wrec {check.rel_error['wrec']:.1e})",
    ]
    wx, wrec = traj.final_w
    if traj.diverged:
        lines.append(
            f"Training diverged at iteration {traj.iterations}; "
            f"last finite weights: wx = {wx:.4f}, wrec = {wrec:.4f}"
        )
    else:
        lines.append(f"Final weights are: wx = {wx:.4f}, wrec = {wrec:.4f}")
    s = result.summary
    if "test_output" in s and np.isfinite(s["test_output"]):
        lines.append(
            f"Output from model: {s['test_output']:.4f}; "
            f"expected output (sum of input): {s['test_expected']:.4f}"
        )
    lines.append(
        f"Final loss {result.final_loss:.6g} after {traj.iterations} iterations ({traj.status})."
    )
    lines.append(
        f"MLflow run {result.run_id} (experiment {result.experiment_id}) in {result.tracking_uri}"
    )
    return "\n".join(lines)
