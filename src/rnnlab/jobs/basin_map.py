"""A basin map as a job: every start of a grid optimised at once (``core.basin``),
its maps written and drawn, recorded as one run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from rnnlab.config import (
    OPTIMIZERS,
    run_params,
    to_container,
    validate,
)
from rnnlab.core.data import Dataset
from rnnlab.jobs.compute import build_optimizer, dataset_of, optimizer_label
from rnnlab.jobs.files import write_config
from rnnlab.jobs.training import Opened, log_dataset, open_store

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

    from rnnlab.core.basin import optimise_many

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


@dataclass
class PreparedBasin:
    """A basin map computed and written, not yet recorded (picklable: the ``rnnlab``
    command prepares in its worker and records in the launching process)."""

    config: dict[str, Any]
    folder: Path  # the run's artifact layout
    job: BasinJob | None
    problem: BaseException | None  # what computing or writing it raised
    files: Any = None  # (none forked: the same shape as a training job's Prepared)


def open_basin(
    config: dict[str, Any],
    overrides: Sequence[str],
    folder: Path,
    tracking_uri: str | None = None,
    source: str | None = None,
) -> Opened:
    """Open the basin map's run (its store and experiment first): params, tags, config."""
    from rnnlab.store import lineage, log, runs

    client, tracking_uri, experiment_id = open_store(config["tracking"], tracking_uri, None)
    tags = {
        **lineage.source_tags(source or " ".join(["rnnlab", *overrides])),
        "task": "basin_map",
        "data_recipe": config["data"]["recipe"],
        "optimizers": ",".join(config["basin"]["optimizers"]),
    }
    run_id = runs.start(client, experiment_id, "basin_map", tags, None, run_params(config))
    with runs.owning(client, run_id, finish=False):
        log.log_files(client, run_id, write_config(config, overrides, folder), "config")
    return Opened(client, experiment_id, tracking_uri, run_id)


def prepare_basin(config: dict[str, Any], folder: Path) -> PreparedBasin:
    """Compute and write the basin map (its checked ``config``) into ``folder``; what
    that raises becomes its ``problem``, which fails the run when it is recorded."""
    prepared = PreparedBasin(config, Path(folder), None, None)
    try:
        prepared.job = compute_basin(config)
        write_basin(prepared.job, prepared.folder)
    except Exception as exc:
        prepared.problem = exc
    return prepared


def finish_basin(opened: Opened, prepared: PreparedBasin) -> dict[str, Any]:
    """Record the prepared basin map on its open run (metrics, description, dataset,
    files) and end it (FINISHED; FAILED with its problem; KILLED on a signal). Returns its
    metrics and run id."""
    from rnnlab.store import log, runs

    client, run_id, folder = opened.client, opened.run_id, prepared.folder
    with runs.owning(client, run_id):
        if prepared.problem is not None:
            raise prepared.problem
        job = prepared.job
        log.log_batch(
            client,
            run_id,
            metrics=log.scalars(job.summary),
            tags={log.NOTE_TAG: basin_description(job)},
        )
        log_dataset(client, run_id, job.dataset)
        for sub in ("results", "figures"):
            if (folder / sub).is_dir():
                log.log_files(client, run_id, folder / sub, sub)
    return {**job.summary, "run_id": run_id}


def basin_report(metrics: dict[str, Any]) -> str:
    """The console's lines for a basin map: its metrics, one a line."""
    return "\n".join(
        f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
        for k, v in metrics.items()
        if v is not None
    )


def execute_basin(
    cfg: DictConfig,
    output_dir: Path,
    overrides: Sequence[str] = (),
    tracking_uri: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The basin-map task (``task=basin_map``) as one MLflow run, in this process:
    ``open_basin`` (first, so that a crash or a signal is recorded), ``prepare_basin``,
    ``finish_basin``. A bad value raises ConfigError before any run exists. Returns its
    metrics and run id."""
    from rnnlab.store import runs

    validate(cfg)
    config = to_container(cfg)
    folder = Path(output_dir) / "artifacts"
    opened = open_basin(config, overrides, folder, tracking_uri, source)
    with runs.owning(opened.client, opened.run_id, finish=False):
        prepared = prepare_basin(config, folder)
    return finish_basin(opened, prepared)
