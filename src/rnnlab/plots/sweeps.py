"""A sweep's comparison figures: every child's path on the loss surface, their loss
curves, and the valley matrix (when each run reached the valley).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.patches
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rnnlab.plots.common import (
    LOSS_CAP,
    Range,
    colorbar,
    colours,
    log_axis,
    log_levels,
    mark_zero,
    on_log_axis,
    panel_grid,
    surface_grid,
    surface_panel,
    zero_floor,
)
from rnnlab.plots.run import XI


def sweep_trajectories(
    X: np.ndarray,
    t: np.ndarray,
    groups: Mapping[str, Sequence[tuple[str, np.ndarray, bool]]],
    bounds: Range,
    resolution: int,
) -> Figure:
    """Every run's path on one loss surface, one panel per group (optimiser), each start
    labelled with its name and each end marked (a star; a red cross where the run
    diverged): where each optimiser gets to, from where."""
    fig, axes = panel_grid(len(groups), 6.0, 5.4, right=1.0)
    wx, wrec, loss = surface_grid(X, t, bounds, resolution)
    levels = log_levels(loss)
    names = sorted({label for runs in groups.values() for label, _, _ in runs})
    colour = dict(zip(names, colours(len(names)), strict=True))
    image = None
    for ax, (panel, runs) in zip(axes, groups.items(), strict=True):
        image = surface_panel(ax, wx, wrec, loss, levels, bounds)
        for label, path, diverged in runs:
            c = colour[label]
            ax.plot(path[:, 0], path[:, 1], "-", color=c, linewidth=1.4, alpha=0.95)
            ax.plot(*path[0], "o", color=c, markeredgecolor="white", markersize=8)
            if diverged:
                ax.plot(*path[-1], "X", color="tab:red", markeredgecolor="white", markersize=12)
            else:
                ax.plot(*path[-1], "*", color=c, markeredgecolor="black", markersize=13)
            ax.annotate(
                label,
                path[0],
                xytext=(5, 5),
                textcoords="offset points",
                fontsize=8,
                color="white",
                bbox={"boxstyle": "round,pad=0.15", "fc": c, "alpha": 0.8, "lw": 0},
            )
        ax.set_title(panel)
    W = fig.get_size_inches()[0]
    cax = fig.add_axes((1 - 0.85 / W, 0.3, 0.15 / W, 0.55))
    colorbar(fig, image, cax, levels)
    fig.suptitle("Every run on the loss surface (o start, * end, X diverged)", y=0.98)
    return fig


def sweep_loss_curves(
    groups: Mapping[str, Sequence[tuple[str, np.ndarray, np.ndarray, bool]]],
) -> Figure:
    """Loss per iteration of every run (log scale), one panel per group of (label, the
    iterations its points were logged at, the loss there, diverged): x is the iteration,
    whichever points were logged; a diverged run's curve ends in an x where it blew up."""
    fig, axes = panel_grid(len(groups), 6.0, 4.2)
    every = [np.asarray(loss, dtype=float) for runs in groups.values() for _, _, loss, _ in runs]
    floor = zero_floor(*every)  # a run that solved the task exactly reaches loss 0
    finite = np.concatenate(every or [np.empty(0)])
    finite = finite[np.isfinite(finite)]
    finite = np.where(finite == 0, floor or 0, finite)
    finite = finite[finite > 0]
    # a diverging run's last losses can reach 1e300: cap the axis where the story is told
    ylim = (finite.min() / 3, min(finite.max() * 3, LOSS_CAP)) if finite.size else (1e-2, 1.0)
    names = sorted({label for runs in groups.values() for label, _, _, _ in runs})
    colour = dict(zip(names, colours(len(names)), strict=True))
    for ax, (panel, runs) in zip(axes, groups.items(), strict=True):
        for label, steps, loss, diverged in runs:
            if len(loss) == 0:
                continue
            it = np.asarray(steps)
            loss = on_log_axis(loss, floor)
            ax.plot(
                it,
                loss,
                color=colour[label],
                linewidth=1.2,
                label=f"{label} (diverged)" if diverged else label,
            )
            if diverged:
                ax.plot(it[-1], loss[-1], "x", color=colour[label], markersize=9, mew=2)
        ax.set_yscale("log")
        log_axis(ax.yaxis)
        ax.set_ylim(*ylim)
        mark_zero(ax, floor)
        ax.set_xlabel("iteration")
        ax.set_ylabel(f"loss {XI} (log scale)")
        ax.set_title(panel)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("Loss per iteration of every run", y=0.98)
    return fig


def valley_matrix(
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Mapping[tuple[str, str], tuple[str, float | None]],
    iterations: int,
    valley_loss: float,
) -> Figure:
    """Which optimiser (row) reaches the valley (loss < ``valley_loss``) from which
    start (column), and in how many iterations: one cell per run, coloured by the
    iterations it took (fewer: brighter); grey where it never got there, red where it
    diverged. ``cells[(row, column)]`` is ("valley", k), ("never", final loss),
    ("diverged", iteration) or ("failed", None)."""
    left = 0.3 + 0.068 * max(len(r) for r in rows)  # room for the row labels
    W = left + 1.25 * len(columns) + 1.2
    H = 1.1 + 0.55 * len(rows) + 0.3
    fig = Figure(figsize=(W, H))
    ax = fig.add_axes((left / W, 0.3 / H, 1.25 * len(columns) / W, 0.55 * len(rows) / H))
    values = np.full((len(rows), len(columns)), np.nan)
    cmap = matplotlib.colormaps["viridis_r"].with_extremes(bad="#d9d9d9")
    norm = LogNorm(vmin=1, vmax=max(iterations, 10))
    for (r, c), (kind, value) in cells.items():
        if kind == "valley":
            values[rows.index(r), columns.index(c)] = max(value or 0, 1)
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest"
    )
    for (r, c), (kind, value) in cells.items():
        i, j = rows.index(r), columns.index(c)
        if kind == "diverged":
            ax.add_patch(
                matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, color="tab:red", lw=0)
            )
            text, colour = f"diverged\nat {value:.0f}", "white"
        elif kind == "valley":
            text = f"{value:.0f}"
            colour = "white" if norm(max(value or 0, 1)) > 0.6 else "black"
        elif kind == "never":
            text, colour = ("never" if value is None else f"never\n(loss {value:.3g})"), "black"
        else:
            text, colour = kind, "black"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(columns)), columns, fontsize=8.5)
    ax.set_yticks(range(len(rows)), rows, fontsize=9)
    ax.set_xticks(np.arange(-0.5, len(columns)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.xaxis.tick_top()
    ax.tick_params(axis="x", labeltop=True, labelbottom=False)
    cax = fig.add_axes((1 - 1.0 / W, 0.3 / H, 0.15 / W, 0.55 * len(rows) / H))
    cbar = fig.colorbar(image, cax=cax)
    log_axis(cbar.ax.yaxis)
    cbar.set_label("iterations to the valley")
    fig.text(
        0.5,
        1 - 0.25 / H,
        f"Iterations to the lab's valley (loss < {valley_loss:g}) from each start, "
        f"{iterations} at most",
        ha="center",
        va="top",
        fontsize=11,
    )
    return fig


def optimisation_history(losses: np.ndarray, best: np.ndarray, objective: str) -> Figure:
    """A search's course over its trials (job numbers): each trial's ``objective`` (a
    dot; a red x along the top where the trial failed or diverged: ``losses`` NaN) and
    the best so far (``best``, a step line), on a log scale. Shapes (n,)."""
    losses, best = np.asarray(losses, dtype=float), np.asarray(best, dtype=float)
    fig = Figure(figsize=(7.0, 4.2))
    ax = fig.add_axes((0.11, 0.14, 0.85, 0.74))
    trials = np.arange(len(losses))
    ok = np.isfinite(losses)
    floor = zero_floor(losses[ok]) if ok.any() else None
    shown = on_log_axis(losses[ok], floor)
    ax.plot(trials[ok], shown, "o", color="tab:blue", markersize=5, label=f"{objective} of a trial")
    reached = np.isfinite(best)
    ax.step(
        trials[reached],
        on_log_axis(best[reached], floor),
        where="post",
        color="tab:orange",
        linewidth=1.8,
        label="best so far",
    )
    ax.set_yscale("log")
    log_axis(ax.yaxis)
    if shown.size:
        ax.set_ylim(shown.min() / 3, min(shown.max() * 3, LOSS_CAP))
    if (~ok).any():
        top = ax.get_ylim()[1]
        ax.plot(trials[~ok], np.full((~ok).sum(), top), "x", color="tab:red", markersize=8,
                mew=2, clip_on=False, label="failed or diverged")  # fmt: skip
    mark_zero(ax, floor)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
    ax.set_xlabel("trial (job number)")
    ax.set_ylabel(f"{objective} (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("The search: each trial, and the best so far", pad=10)
    return fig
