"""Basin maps: for every start of a grid, where an optimiser ends (and how fast), one
panel per optimiser, side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.patches
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from rnnlab.plots.common import (
    CMAP,
    LOSS_FLOOR,
    POINTS_TITLE,
    Range,
    grid_image,
    log_axis,
    mark_points,
)
from rnnlab.plots.run import WREC, WX


def _basin_scales(maps: Mapping[str, Mapping[str, np.ndarray]]):
    """The shared scales of basin maps: the final-loss range (lo, hi) over every map, and
    the colour maps for loss (red: diverged; black: below lo), iterations (grey: never)
    and diverged starts."""
    finite = np.concatenate([m["final_loss"][np.isfinite(m["final_loss"])] for m in maps.values()])
    positive = finite[finite > 0]
    lo = max(positive.min(), LOSS_FLOOR) if positive.size else LOSS_FLOOR
    hi = max(positive.max(), lo * 10) if positive.size else 1.0
    loss_cmap = matplotlib.colormaps[CMAP].with_extremes(bad="tab:red", under="black")
    iter_cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="lightgrey")
    diverged_cmap = matplotlib.colors.ListedColormap(["tab:red"])
    return lo, hi, loss_cmap, iter_cmap, diverged_cmap


def basin_maps(
    maps: Mapping[str, Mapping[str, np.ndarray]],
    bounds: Range,
    points: Mapping[str, Sequence[float]],
    iterations: int,
    tolerance: float,
) -> Figure:
    """Per optimiser (one row each): the final loss from every start (log colours) and
    the iterations it took to reach ``tolerance``; diverged starts in red, starts that
    never converged in grey; the named points marked. Arrays are (n_wrec, n_wx)."""
    rows, row_h, legend_h, title_h = len(maps), 4.4, 1.1, 0.5
    W, H = 11.5, rows * row_h + legend_h + title_h
    fig = Figure(figsize=(W, H))
    axes = []
    for r in range(rows):
        low = (H - title_h - (r + 1) * row_h + 0.6) / H
        axes.append(
            [
                fig.add_axes((0.7 / W, low, 3.9 / W, 3.5 / H)),
                fig.add_axes((6.45 / W, low, 3.9 / W, 3.5 / H)),
            ]
        )
    grid: Any = np.array(axes, dtype=object)
    extent = (bounds[0], bounds[1], bounds[2], bounds[3])
    lo, hi, loss_cmap, iter_cmap, diverged_cmap = _basin_scales(maps)
    for row, (name, m) in zip(grid, maps.items(), strict=True):
        diverged = m["diverged_at"] >= 0
        loss = np.ma.masked_invalid(np.where(diverged, np.nan, m["final_loss"]))
        im = grid_image(row[0], loss, extent, cmap=loss_cmap, norm=LogNorm(vmin=lo, vmax=hi))
        pos = row[0].get_position()
        cax = fig.add_axes((pos.x1 + 0.1 / W, pos.y0, 0.13 / W, pos.height))
        cbar = fig.colorbar(im, cax=cax, extend="min")
        log_axis(cbar.ax.yaxis)
        cbar.set_label(f"final loss (log scale; black: < {lo:.2g})")
        its = np.ma.masked_less(m["first_converged"].astype(float), 0)
        im2 = grid_image(row[1], its, extent, cmap=iter_cmap, vmin=0, vmax=iterations)
        pos = row[1].get_position()
        cax2 = fig.add_axes((pos.x1 + 0.1 / W, pos.y0, 0.13 / W, pos.height))
        fig.colorbar(im2, cax=cax2).set_label(f"iterations to loss < {tolerance:g}")
        for ax in row:
            grid_image(ax, np.ma.masked_where(~diverged, diverged), extent, cmap=diverged_cmap)
            mark_points(ax, points)
            ax.set_xlabel(f"start {WX}")
            ax.set_ylabel(f"start {WREC}")
        conv, div = float(np.mean(m["first_converged"] >= 0)), float(np.mean(diverged))
        row[0].set_title(f"{name}: final loss (red: diverged, {div:.0%})")
        row[1].set_title(f"{name}: iterations to converge ({conv:.0%} did; grey: never)")
    if points:
        fig.legend(
            *grid[0, 0].get_legend_handles_labels(),
            loc="lower center",
            bbox_to_anchor=(0.5, 0.1 / H),
            ncols=min(len(points), 3),
            title=f"the lab's points {POINTS_TITLE}",
        )
    fig.suptitle(
        f"Basin maps: where each optimiser gets to from every start ({iterations} iterations)",
        y=1 - 0.15 / H,
    )
    return fig


def basin_maps_side_by_side(
    maps: Mapping[str, Mapping[str, np.ndarray]],
    bounds: Range,
    points: Mapping[str, Sequence[float]],
    iterations: int,
    tolerance: float,
    titles: Mapping[str, str] | None = None,
) -> Figure:
    """Many optimisers side by side, one column each, on shared colour scales: the final
    loss from every start (top row; red where it diverged) and the iterations it took
    to reach ``tolerance`` (bottom row; grey where it never did)."""
    titles = titles or {}
    n, side = len(maps), 2.6
    W, H = 0.8 + n * (side + 0.35) + 1.3, 2 * (side + 0.75) + 1.5
    fig = Figure(figsize=(W, H))
    extent = (bounds[0], bounds[1], bounds[2], bounds[3])
    lo, hi, loss_cmap, iter_cmap, diverged_cmap = _basin_scales(maps)
    images = []
    for j, (name, m) in enumerate(maps.items()):
        x0 = (0.8 + j * (side + 0.35)) / W
        top = fig.add_axes((x0, (1.0 + side + 0.75) / H, side / W, side / H))
        bottom = fig.add_axes((x0, 1.0 / H, side / W, side / H))
        diverged = m["diverged_at"] >= 0
        loss = np.ma.masked_invalid(np.where(diverged, np.nan, m["final_loss"]))
        im1 = grid_image(top, loss, extent, cmap=loss_cmap, norm=LogNorm(vmin=lo, vmax=hi))
        its = np.ma.masked_less(m["first_converged"].astype(float), 0)
        im2 = grid_image(bottom, its, extent, cmap=iter_cmap, vmin=0, vmax=iterations)
        images = [im1, im2]
        for ax in (top, bottom):
            grid_image(ax, np.ma.masked_where(~diverged, diverged), extent, cmap=diverged_cmap)
            mark_points(ax, points)
            ax.tick_params(labelsize=7)
            ax.set_xlabel(f"start {WX}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"start {WREC}", fontsize=8)
            else:
                ax.set_yticklabels([])
        conv, div = float(np.mean(m["first_converged"] >= 0)), float(np.mean(diverged))
        top.set_title(
            f"{titles.get(name, name)}\n{conv:.0%} reach it, {div:.0%} diverge", fontsize=9
        )
    for k, (image, label) in enumerate(
        zip(
            images,
            [
                f"final loss (log; black < {lo:.2g}; red: diverged)",
                f"iterations to loss < {tolerance:g}",
            ],
            strict=True,
        )
    ):
        y0 = (1.0 + side + 0.75) / H if k == 0 else 1.0 / H
        cax = fig.add_axes(((W - 1.1) / W, y0, 0.13 / W, side / H))
        cbar = fig.colorbar(image, cax=cax, extend="min" if k == 0 else "neither")
        if k == 0:
            log_axis(cbar.ax.yaxis)
        cbar.set_label(label, fontsize=8)
    if points:
        fig.legend(
            *fig.axes[0].get_legend_handles_labels(),
            loc="lower center",
            bbox_to_anchor=(0.5, 0.02),
            ncols=len(points),
            fontsize=8,
            title=f"the lab's points {POINTS_TITLE}",
            title_fontsize=8,
        )
    fig.suptitle(
        f"Basin maps side by side: final loss (top) and iterations to the valley (bottom) "
        f"from every start, {iterations} iterations",
        y=1 - 0.1 / H,
    )
    return fig
