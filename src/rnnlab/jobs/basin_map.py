"""A basin map's compute: every start of a grid optimised at once (``core.basin``), its
maps written and drawn (``jobs.runner`` records it as one run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.config import OPTIMIZERS
from rnnlab.core.data import Dataset
from rnnlab.jobs.compute import build_optimizer, dataset_of, optimizer_label


@dataclass
class BasinJob:
    config: dict[str, Any]
    dataset: Dataset
    wx: np.ndarray
    wrec: np.ndarray
    maps: dict[str, dict[str, np.ndarray]]
    summary: dict[str, float | None]

    @property
    def objective(self) -> dict[str, float | None]:
        """What the task returns to a sweeper: the maps' metrics."""
        return dict(self.summary)


def compute_basin(
    config: Mapping[str, Any],
    progress: bool = True,
    safe_point: Callable[[], None] | None = None,
) -> BasinJob:
    """Every start of the grid, every optimiser (pure; a progress bar on a terminal;
    ``safe_point()`` after each chunk of starts)."""
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

        def done(count: int, bar: Any = bar) -> None:  # each chunk: a safe point too
            bar.update(count)
            if safe_point is not None:
                safe_point()

        with bar:
            res = optimise_many(
                dataset.X,
                dataset.t,
                starts,
                build_optimizer(opt_cfg),
                config["iterations"],
                b["tolerance"],
                b["chunk"],
                done,
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
    arrays: dict[str, Any] = {f"{o}_{k}": v for o, m in job.maps.items() for k, v in m.items()}
    arrays.update(wx=job.wx, wrec=job.wrec)
    np.savez_compressed(folder / "results" / "basin_map.npz", **arrays)
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


def basin_report(metrics: dict[str, Any]) -> str:
    """The console's lines for a basin map: its metrics, one a line."""
    return "\n".join(
        f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
        for k, v in metrics.items()
        if v is not None
    )
