"""One job: config in, trained network and one MLflow run out, in three steps.

    result = compute(config)                pure: data, gradient check, training, test
    write(result, folder)                   CSV/JSON/figures from the result alone
    record(client, run_id, result, folder)  metrics, tags, artifacts, model

``execute`` (behind the ``@hydra.main`` entry point, the Python API and reruns) checks
the config, opens the run in ``lifecycle.owned_run`` (so a crash or a signal still ends
it FAILED or KILLED) and runs the three steps inside it. ``rnnlab-plot`` reuses
``draw_figures`` on a result read back from the store; a basin map is the same three
steps with ``compute_basin``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from rnnlab import rnn
from rnnlab.config import (
    CUSTOM_START,
    OPTIMIZER_NAMES,
    OPTIMIZERS,
    RATE_KEYS,
    optimizer_id,
    run_params,
    to_container,
    validate,
)
from rnnlab.data import Dataset, make_dataset
from rnnlab.gradcheck import PARAMS, GradCheck, gradient_check
from rnnlab.optim import (
    Adam,
    GradientDescent,
    IRPropMinus,
    IRPropPlus,
    Momentum,
    Optimizer,
    RProp,
)
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
        # `diverged` first: MLflow's compare view colours its parallel coordinates by the
        # first metric every run shares
        values: dict[str, float | None] = {
            "diverged": float(traj.diverged),
            "iterations": float(traj.iterations),
        }
        valley = np.flatnonzero(traj.loss < self.config.get("valley_loss", 0.2))
        if valley.size and not traj.diverged:  # the first point in the lab's valley
            values["valley_at"] = float(valley[0])
        if traj.diverged:
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


STEP_RULES = {
    "rprop": RProp,
    "gd": GradientDescent,
    "momentum": Momentum,
    "adam": Adam,
    "irprop_minus": IRPropMinus,
    "irprop_plus": IRPropPlus,
}


def build_optimizer(cfg: Mapping[str, Any]) -> Optimizer:
    """The step rule named by ``cfg['name']`` with the config's hyperparameters."""
    return STEP_RULES[cfg["name"]](**{k: v for k, v in cfg.items() if k != "name"})


def optimizer_label(cfg: Mapping[str, Any]) -> str:
    """A human name for figures: 'RProp', 'gradient descent (lr=1e-05)', 'Adam (lr=0.01)'."""
    name = cfg["name"]
    label = OPTIMIZER_NAMES[name]
    if name not in RATE_KEYS:  # the RProp family: no learning rate
        return label
    rate = f"lr={cfg['learning_rate']:g}"
    if name == "gd":
        clip = cfg.get("clip_norm")
        return f"{label} ({rate}" + (f", clipped at {clip:g})" if clip else ")")
    if name == "momentum":
        kind = "Nesterov momentum" if cfg.get("nesterov") else label
        return f"{kind} {cfg['momentum']:g} ({rate})"
    return f"{label} ({rate})"


def dataset_of(config: Mapping[str, Any]) -> Dataset:
    d = config["data"]
    return make_dataset(d["recipe"], d["n_samples"], d["seq_len"], d["seed"])


def gradient_curves(dataset: Dataset, points: Mapping[str, Sequence[float]]) -> Curves:
    """The gradient over time (d loss / d S_k, k = 0..T) from each named point."""
    curves = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for name, (wx, wrec) in points.items():
            g = rnn.state_gradients(dataset.X, dataset.t, wx, wrec)
            if np.all(np.isfinite(g)):
                curves[name] = (float(wx), float(wrec), g)
    return curves


# --- 1. compute -------------------------------------------------------------------------


def compute(config: Mapping[str, Any]) -> JobResult:
    """The lab's whole job from a resolved config: pure, no files, no runs.

    Raises GradientCheckFailed (carrying the check) when BPTT disagrees with central
    differences."""
    dataset = dataset_of(config)
    g = config["gradcheck"]
    check = gradient_check(dataset.X, dataset.t, g["wx"], g["wrec"], g["eps"], g["rtol"])
    if not check.passed:
        raise GradientCheckFailed(check)
    trajectory = optimise(
        dataset.X,
        dataset.t,
        (config["init"]["wx"], config["init"]["wrec"]),
        build_optimizer(config["optimizer"]),
        config["iterations"],
        config["tolerance"],
        config["divergence"]["loss_factor"],
    )
    with np.errstate(over="ignore", invalid="ignore"):
        test_output = float(predict(config["data"]["test_sequence"], *trajectory.final_w)[0])
    curves = gradient_curves(dataset, config["plots"]["points"])
    return JobResult(dict(config), dataset, check, trajectory, curves, test_output)


# --- 2. write ---------------------------------------------------------------------------


def write_config(config: Mapping[str, Any], overrides: Sequence[str], folder: Path) -> Path:
    """The resolved config (credentials in URIs hidden) and the overrides that made it,
    as ``folder/config/{config,overrides}.yaml``: logged first, so that even a run that
    crashes can be rerun."""
    from rnnlab import console
    from rnnlab.tracking import redact

    (folder / "config").mkdir(parents=True, exist_ok=True)
    config = dict(config)
    if "tracking" in config:
        config["tracking"] = {**config["tracking"], "uri": redact(config["tracking"]["uri"])}
    (folder / "config" / "config.yaml").write_text(_yaml(config))
    (folder / "config" / "overrides.yaml").write_text(_yaml([console.redact(o) for o in overrides]))
    return folder / "config"


def write(result: JobResult, folder: Path) -> Path:
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
    )
    write_trajectory(result.trajectory, folder / "results" / "trajectory.csv")
    curves = result.curves
    grads = {
        "points": {name: [wx, wrec] for name, (wx, wrec, _) in curves.items()},
        "gradients": {name: g.tolist() for name, (_, _, g) in curves.items()},
    }
    (folder / "results" / "gradient_over_time.json").write_text(json.dumps(grads))
    check = result.gradcheck
    (folder / "results" / "gradcheck.json").write_text(
        json.dumps(asdict(check) | {"passed": check.passed}, indent=1)
    )
    traj = result.trajectory
    summary = {
        **result.summary,
        "status": traj.status,
        "diverged_at": traj.diverged_at,
        "start": traj.start.tolist(),
        "final_w": traj.final_w.tolist(),
    }
    (folder / "results" / "summary.json").write_text(json.dumps(summary, indent=1))
    draw_figures(
        folder / "figures",
        result.config["plots"],
        optimizer_label(result.config["optimizer"]),
        result.dataset,
        traj,
        curves,
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
    )


def draw_figures(
    folder: Path,
    plot_cfg: Mapping[str, Any],
    label: str,
    dataset: Dataset,
    trajectory: Trajectory,
    curves: Curves,
) -> list[Path]:
    """Draw the configured figures into ``folder``; return the files written."""
    if not plot_cfg["enabled"] or not plot_cfg["figures"]:
        return []
    from rnnlab import plots  # matplotlib only where figures are drawn

    X, t = dataset.X, dataset.t
    res, fmt, dpi = plot_cfg["resolution"], plot_cfg["format"], plot_cfg["dpi"]
    cols = trajectory.columns()
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
        ),
        "training_curves": lambda: plots.training_curves(cols, label),
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
        fig = makers[name]()
        written.append(plots.save(fig, folder / f"{name}.{fmt}", fmt, dpi))
    return written


# --- 3. record --------------------------------------------------------------------------


def run_name(
    config: Mapping[str, Any], trajectory: Trajectory | None = None, job: SweepJob | None = None
) -> str:
    """``rprop-lab_start``: the optimiser and the start. A sweep's child starts with its
    job number and ends with the swept values the rest does not say (``#7 gd-steady
    learning_rate=0.001``), so that what tells two children apart comes before where the
    runs table cuts names short; a diverged run ends in ``(diverged)``."""
    init = config["init"]
    start = init["name"]
    if start == CUSTOM_START:  # a start of one's own: its weights say which
        start = f"({init['wx']:g}, {init['wrec']:g})"
    name = f"{optimizer_id(config['optimizer'])}-{start}"
    if job is not None:
        name = " ".join(filter(None, (f"#{job.num}", name, job.extra)))
    return f"{name} (diverged)" if trajectory is not None and trajectory.diverged else name


def diverged_text(traj: Trajectory) -> str:
    """A diverged run's one story, for the console, its description and a sweep's line:
    where it diverged and that it has no final loss (only its last finite point)."""
    last = f"{traj.final_loss:.3g} at iteration {traj.iterations}" if len(traj.loss) else "none"
    return f"diverged at iteration {traj.diverged_at}: no final loss (last finite loss {last})"


def description(result: JobResult) -> str:
    """One line for the run's description (the UI's Description)."""
    traj, init = result.trajectory, result.config["init"]
    label = optimizer_label(result.config["optimizer"])
    start = f"{init['name']} ({init['wx']:g}, {init['wrec']:g})"
    if traj.diverged:
        return f"{label} from {start}: {diverged_text(traj)}"
    return (
        f"{label} from {start}: {traj.iterations} iterations, "
        f"final loss {traj.final_loss:.3g}, {traj.status}"
    )


def record(
    client,
    experiment_id: str,
    run_id: str,
    result: JobResult,
    log_model: bool,
    job: SweepJob | None = None,
) -> None:
    """What ``compute`` made, onto the open run: metrics, tags (status, description, a
    diverged run's name), the dataset, the model. (``write``'s files are logged apart.)"""
    from rnnlab import tracking

    traj = result.trajectory
    tracking.log_batch(
        client,
        run_id,
        metrics=[*tracking.scalars(result.summary), *tracking.series(traj.columns())],
        tags={
            "status": traj.status,
            "data_digest": result.dataset.digest,
            tracking.NOTE_TAG: description(result),
            tracking.RUN_NAME_TAG: run_name(result.config, traj, job),
        },
    )
    log_dataset(client, run_id, result.dataset)
    if log_model and np.all(np.isfinite(traj.final_w)):
        tracking.log_model(
            client,
            experiment_id,
            run_id,
            *traj.final_w,
            result.config["data"]["test_sequence"],
        )


def log_dataset(client, run_id: str, d: Dataset) -> None:
    from rnnlab import tracking

    name = f"{d.recipe}-{d.X.shape[0]}x{d.X.shape[1]}-seed{d.seed}"
    tracking.log_dataset(client, run_id, name, d.digest, d.X, d.t)


def _store(t: Mapping[str, Any], tracking_uri: str | None, experiment_id: str | None):
    """(client, absolute store URI, experiment id) for a job: the given URI and experiment
    (a sweep's), or the tracking config's, the experiment created if missing."""
    from rnnlab import tracking

    tracking_uri = tracking.resolve_uri(tracking_uri or t["uri"])
    client = tracking.client_for(tracking_uri)
    if experiment_id is None:
        experiment_id = tracking.ensure_experiment(
            client, t["experiment"], t["artifact_root"], t["description"]
        )
    return client, tracking_uri, experiment_id


@dataclass
class Prepared:
    """A job computed and written, not yet recorded: ``prepare``'s half of ``execute``
    (picklable: the ``rnnlab`` command prepares in a worker process and records in the
    launching one, see ``app``)."""

    config: dict[str, Any]
    overrides: list[str]
    folder: Path  # the run's artifact layout (config/ is written when the run opens)
    result: JobResult | None
    problem: BaseException | None  # a bad value (in a sweep), a failed gradient check, a bug
    files: Any = None  # forked.Forked writing the files, while the run is recorded


@dataclass
class Opened:
    """A job's run, open in the store: ``open_run``'s half of ``execute``."""

    client: Any
    experiment_id: str
    tracking_uri: str
    run_id: str
    job: SweepJob | None = None


@dataclass(frozen=True)
class SweepJob:
    """A sweep's child: its job number and its swept values (key -> value, as in its
    overrides). Its run's name starts with the number and ends with the values the
    optimiser-start name does not say; each value is also its param ``choice.<key>``."""

    num: int
    swept: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, num: int, overrides: Sequence[str], swept: Sequence[str]) -> SweepJob:
        """Job ``num`` of a sweep over the keys ``swept``, from its overrides."""
        values = dict(o.split("=", 1) for o in overrides if "=" in o)
        return cls(num, {k: values[k] for k in swept if k in values})

    @property
    def extra(self) -> str:
        from rnnlab import ui

        return " ".join(
            f"{k.rsplit('.', 1)[-1]}={v}" for k, v in self.swept.items() if k not in ui.NAMED_KEYS
        )

    @property
    def params(self) -> dict[str, str]:
        """``choice.<key>``: MLflow's compare view starts its parallel coordinates on the
        first three params (alphabetically) that differ between the runs: these."""
        from rnnlab import ui

        return {f"{ui.CHOICE_PREFIX}{k}": str(v) for k, v in self.swept.items()}


def prepare(
    cfg: DictConfig,
    output_dir: Path,
    overrides: Sequence[str] = (),
    in_sweep: bool = False,
    config: dict[str, Any] | None = None,
) -> Prepared:
    """Check, compute and write one job, before (or while) its run is opened.

    Alone, a bad value raises ConfigError: no run will exist. Inside a sweep it becomes
    the job's ``problem``, which fails the job's run, so the sweep's record names it.
    The job's files and figures are drawn in a forked child (``forked.Forked``) where
    that is enabled: ``finish_run`` waits for them.
    """
    from rnnlab.forked import Forked

    if not in_sweep:
        validate(cfg)
    config = to_container(cfg) if config is None else config
    folder = Path(output_dir) / "artifacts"
    prepared = Prepared(config, list(overrides), folder, None, None)
    try:
        validate(cfg)
        prepared.result = compute(config)
        prepared.files = Forked(write, prepared.result, folder)
    except Exception as exc:
        prepared.problem = exc
    return prepared


def open_run(
    config: dict[str, Any],
    overrides: Sequence[str],
    folder: Path,
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
    source: str | None = None,
    job: SweepJob | None = None,
) -> Opened:
    """Open the job's run (its store and experiment first): params, tags, config files.

    Inside a sweep, ``experiment_id`` and the launcher's absolute ``tracking_uri`` come
    from the sweep (which created the store and experiment once, before any job);
    alone, the experiment named by ``tracking.experiment`` is looked up or created.
    """
    from rnnlab import console, lifecycle, tracking

    client, tracking_uri, experiment_id = _store(config["tracking"], tracking_uri, experiment_id)
    config["tracking"]["uri"] = tracking_uri  # the store it is really in
    if parent_run_id is None:
        from rnnlab import doctor, ui

        doctor.offer(client)
        ui.save_results_view(client, experiment_id)
    tags = {
        **tracking.source_tags(console.redact(source or " ".join(["rnnlab", *overrides]))),
        "optimizer": optimizer_id(config["optimizer"]),
        "init": config["init"]["name"],
        "data_recipe": config["data"]["recipe"],
        "data_seed": str(config["data"]["seed"]),
        **(extra_tags or {}),
    }
    params = {**run_params(config), **(job.params if job else {})}
    run_id = lifecycle.start(
        client, experiment_id, run_name(config, job=job), tags, parent_run_id, params
    )
    with lifecycle.owning(client, run_id, finish=False):
        tracking.log_files(client, run_id, write_config(config, overrides, folder), "config")
    return Opened(client, experiment_id, tracking_uri, run_id, job)


def finish_run(opened: Opened, prepared: Prepared, log_model: bool | None = None) -> RunResult:
    """Record the prepared job on its open run and end it (FINISHED; FAILED with the
    error; KILLED on a signal)."""
    from rnnlab import lifecycle, tracking

    client, run_id, config = opened.client, opened.run_id, prepared.config
    try:
        with lifecycle.owning(client, run_id):
            problem = prepared.problem
            if isinstance(problem, GradientCheckFailed):
                errors = {f"gradcheck_rel_error_{p}": problem.check.rel_error[p] for p in PARAMS}
                tracking.log_batch(client, run_id, metrics=tracking.scalars(errors))
            if problem is not None:
                raise problem
            wants_model = config["tracking"]["log_model"] if log_model is None else log_model
            record(client, opened.experiment_id, run_id, prepared.result, wants_model, opened.job)
            if prepared.files is not None:
                prepared.files.wait()
            for sub in ("data", "results", "figures"):
                if (prepared.folder / sub).is_dir():
                    tracking.log_files(client, run_id, prepared.folder / sub, sub)
    finally:
        if prepared.files is not None:
            prepared.files.cancel()
    result = prepared.result
    return RunResult(
        run_id=run_id,
        experiment_id=opened.experiment_id,
        tracking_uri=opened.tracking_uri,
        config=config,
        trajectory=result.trajectory,
        gradcheck=result.gradcheck,
        summary=result.summary,
    )


def execute(
    cfg: DictConfig,
    output_dir: Path,
    overrides: Sequence[str] = (),
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
    source: str | None = None,
    log_model: bool | None = None,
    job: SweepJob | None = None,
) -> RunResult:
    """Run one job as configured and record it as one MLflow run, in this process:
    ``open_run`` (first, so that a crash or a signal is recorded), ``prepare`` (check,
    compute, write), ``finish_run``. Alone, a bad value raises ConfigError before any
    run exists; inside a sweep (``parent_run_id``) it fails the job's run instead."""
    from rnnlab import lifecycle

    if parent_run_id is None:
        validate(cfg)
    config = to_container(cfg)
    opened = open_run(
        config,
        overrides,
        Path(output_dir) / "artifacts",
        parent_run_id,
        experiment_id,
        extra_tags,
        tracking_uri,
        source,
        job,
    )
    with lifecycle.owning(opened.client, opened.run_id, finish=False):
        prepared = prepare(cfg, output_dir, overrides, in_sweep=True, config=config)
    return finish_run(opened, prepared, log_model)


def _yaml(obj: Any) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False)


# --- basin maps -------------------------------------------------------------------------


@dataclass
class BasinJob:
    config: dict[str, Any]
    dataset: Dataset
    wx: np.ndarray
    wrec: np.ndarray
    maps: dict[str, dict[str, np.ndarray]]
    summary: dict[str, float | None]


def compute_basin(config: Mapping[str, Any], progress: bool = True) -> BasinJob:
    """Every start of the grid, every optimiser (pure; a progress bar on a terminal)."""
    from tqdm import tqdm

    from rnnlab.basin import optimise_many

    b = config["basin"]
    dataset = dataset_of(config)
    n = b["resolution"]
    wx = np.linspace(b["bounds"][0], b["bounds"][1], n)
    wrec = np.linspace(b["bounds"][2], b["bounds"][3], n)
    starts = np.stack(np.meshgrid(wx, wrec), axis=-1).reshape(-1, 2)  # rows follow wrec
    maps: dict[str, dict[str, np.ndarray]] = {}
    summary: dict[str, float | None] = {}
    for name, opt_cfg in b["optimizers"].items():
        # a progress bar on a terminal; quiet (disable=None) in logs, pipes and tests
        disable = None if progress else True
        bar = tqdm(total=len(starts), desc=f"basin map {name}", unit="start", disable=disable)
        with bar:
            res = optimise_many(
                dataset.X,
                dataset.t,
                starts,
                build_optimizer(opt_cfg),
                config["iterations"],
                b["tolerance"],
                b["chunk"],
                bar.update,
                config["divergence"]["loss_factor"],
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
    return BasinJob(dict(config), dataset, wx, wrec, maps, summary)


def write_basin(job: BasinJob, folder: Path) -> Path:
    (folder / "results").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / "results" / "basin_map.npz",
        wx=job.wx,
        wrec=job.wrec,
        **{f"{o}_{k}": v for o, m in job.maps.items() for k, v in m.items()},
    )
    p, b = job.config["plots"], job.config["basin"]
    if p["enabled"]:
        from rnnlab import plots

        if len(job.maps) >= 3:  # many optimisers: side by side, one column each
            titles = {n: optimizer_label(o) for n, o in b["optimizers"].items()}
            order = {n: i for i, n in enumerate(OPTIMIZERS)}
            maps = {n: job.maps[n] for n in sorted(job.maps, key=lambda n: order.get(n, 99))}
            fig = plots.basin_maps_side_by_side(
                maps, b["bounds"], p["points"], job.config["iterations"], b["tolerance"], titles
            )
        else:
            fig = plots.basin_maps(
                job.maps, b["bounds"], p["points"], job.config["iterations"], b["tolerance"]
            )
        plots.save(fig, folder / "figures" / f"basin_map.{p['format']}", p["format"], p["dpi"])
    return folder


def basin_description(job: BasinJob) -> str:
    n = job.config["basin"]["resolution"]
    parts = [
        f"{name}: {job.summary[f'{name}_fraction_converged']:.0%} converged, "
        f"{job.summary[f'{name}_fraction_diverged']:.0%} diverged"
        for name in job.maps
    ]
    return f"Basin map, {n} x {n} starts, {job.config['iterations']} iterations. " + "; ".join(
        parts
    )


def execute_basin(
    cfg: DictConfig,
    output_dir: Path,
    overrides: Sequence[str] = (),
    tracking_uri: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The basin-map task (``task=basin_map``) as one MLflow run; returns its metrics."""
    from rnnlab import lifecycle, tracking

    validate(cfg)
    config = to_container(cfg)
    client, _, experiment_id = _store(config["tracking"], tracking_uri, None)
    tags = {
        **tracking.source_tags(source or " ".join(["rnnlab", *overrides])),
        "task": "basin_map",
        "data_recipe": config["data"]["recipe"],
        "optimizers": ",".join(config["basin"]["optimizers"]),
    }
    folder = Path(output_dir) / "artifacts"
    with lifecycle.owned_run(
        client, experiment_id, "basin_map", tags, None, run_params(config)
    ) as run_id:
        tracking.log_files(client, run_id, write_config(config, overrides, folder), "config")
        job = compute_basin(config)
        write_basin(job, folder)
        d = job.dataset
        tracking.log_batch(
            client,
            run_id,
            metrics=tracking.scalars(job.summary),
            tags={tracking.NOTE_TAG: basin_description(job)},
        )
        log_dataset(client, run_id, d)
        for sub in ("results", "figures"):
            if (folder / sub).is_dir():
                tracking.log_files(client, run_id, folder / sub, sub)
    return {**job.summary, "run_id": run_id}


# --- the console --------------------------------------------------------------------------


def outcome(traj: Trajectory) -> str:
    """A job's result in a few words, for a sweep's line per job."""
    if traj.diverged:
        return diverged_text(traj)
    return f"final loss {traj.final_loss:.6g} after {traj.iterations} iterations ({traj.status})"


def report(result: RunResult) -> str:
    """A short summary in the lab's words."""
    from rnnlab import ui
    from rnnlab.tracking import redact

    check, traj = result.gradcheck, result.trajectory
    lines = [
        f"Gradient check at ({check.at[0]:g}, {check.at[1]:g}): {check.summary()} "
        f"(relative error wx {check.rel_error['wx']:.1e}, wrec {check.rel_error['wrec']:.1e})",
    ]
    wx, wrec = traj.final_w
    if traj.diverged:
        lines.append(f"Last finite weights: wx = {wx:.4f}, wrec = {wrec:.4f}")
    else:
        lines.append(f"Final weights are: wx = {wx:.4f}, wrec = {wrec:.4f}")
    s = result.summary
    if "test_output" in s:
        lines.append(
            f"Output from model: {s['test_output']:.4f}; "
            f"expected output (sum of input): {s['test_expected']:.4f}"
        )
    if traj.diverged:
        lines.append(f"Training {diverged_text(traj)}.")
    else:
        lines.append(
            f"Final loss {result.final_loss:.6g} after {traj.iterations} iterations "
            f"({traj.status})."
        )
    lines.append(
        f"MLflow run {result.run_id} (experiment {result.experiment_id}) in "
        f"{redact(result.tracking_uri)}"
    )
    base = ui.base_url(result.tracking_uri, result.config["tracking"].get("ui_url"))
    lines += ui.run_lines(base, result.experiment_id, result.run_id)
    return "\n".join(lines)
