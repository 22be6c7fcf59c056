"""A run's figures, each a function of data returning a Figure. Drawn for speed as well:
fixed margins (no constrained layout), plain Unicode text (no mathtext), a loss surface as
a banded image of the closed form at the grid's resolution."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.patches
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from rnnlab.plots.common import (
    POINTS_TITLE,
    WREC,
    WX,
    XI,
    Range,
    colorbar,
    colours,
    decade,
    log_axis,
    log_levels,
    mark_points,
    mark_zero,
    on_log_axis,
    surface_grid,
    surface_panel,
    two_rows,
    zero_floor,
)


def _two_surfaces(X, t, overview: Range, zoom: Range, resolution: int, title: str):
    fig = Figure(figsize=(11, 5.4))
    axes = [fig.add_axes((0.05, 0.27, 0.37, 0.62)), fig.add_axes((0.46, 0.27, 0.37, 0.62))]
    cax = fig.add_axes((0.845, 0.27, 0.014, 0.62))
    grids = [surface_grid(X, t, b, resolution) for b in (overview, zoom)]
    levels = log_levels(grids[0][2], grids[1][2])
    image = None
    for ax, (wx, wrec, loss), bounds, name in zip(
        axes, grids, (overview, zoom), ("overview", "zoom"), strict=True
    ):
        image = surface_panel(ax, wx, wrec, loss, levels, bounds)
        ax.set_title(name)
    colorbar(fig, image, cax, levels)
    fig.suptitle(title, y=0.97)
    return fig, axes


def loss_surface(
    X: np.ndarray,
    t: np.ndarray,
    points: Mapping[str, Sequence[float]],
    overview: Range,
    zoom: Range,
    resolution: int,
) -> Figure:
    """The loss over (wx, wrec), overview and zoom, with the named points marked."""
    fig, axes = _two_surfaces(X, t, overview, zoom, resolution, "Loss surface")
    for ax in axes:
        mark_points(ax, points)
    if points:
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            loc="lower center",
            bbox_to_anchor=(0.46, 0.01),
            ncols=min(len(points), 3),
            title=POINTS_TITLE,
        )
    return fig


def gradient_over_time(curves: Mapping[str, tuple[float, float, np.ndarray]]) -> Figure:
    """d loss / d S_k against timestep k for each named point (wx, wrec, gradients).

    The gradient flows backwards from k = T at the left to k = 0 at the right, on a
    symmetric log scale, so growth, decay and sign flips all show.
    """
    fig = Figure(figsize=(10, 4.8))
    ax = fig.add_axes((0.1, 0.12, 0.62, 0.8))
    peak = 1.0
    for (name, (wx, wrec, g)), colour in zip(curves.items(), colours(len(curves)), strict=True):
        k = np.arange(len(g))
        ax.plot(
            k,
            g,
            "-o",
            color=colour,
            markersize=3,
            linewidth=1.2,
            label=f"{name} ({wx:g}, {wrec:g})",
        )
        peak = max(peak, float(np.max(np.abs(g))))
    T = max(len(g) for _, _, g in curves.values()) - 1
    ax.set_xlim(T + 0.5, -0.5)
    ax.set_xticks(np.arange(T, -1, -1 if T <= 20 else -max(1, T // 20)))
    ax.set_yscale("symlog", linthresh=1.0)
    top = int(np.ceil(np.log10(peak)))
    step = max(1, int(np.ceil(top / 5)))
    decades = [10.0**e for e in range(step, top + 1, step)]
    ax.set_yticks([-d for d in reversed(decades)] + [0.0] + decades)
    ax.yaxis.set_major_formatter(FuncFormatter(decade))
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_ylim(-(10.0 ** (top + 0.3)), 10.0 ** (top + 0.3))
    ax.grid(True, which="major", alpha=0.3)
    ax.set_xlabel("timestep k (the gradient flows from k = T on the left to k = 0)")
    ax.set_ylabel(f"∂{XI}/∂S_k (symlog)")
    ax.set_title("How the gradient changes as it is propagated back through time")
    fig.legend(title=POINTS_TITLE, loc="center left", bbox_to_anchor=(0.74, 0.52), frameon=False)
    return fig


def trajectory(
    X: np.ndarray,
    t: np.ndarray,
    path: np.ndarray,
    label: str,
    overview: Range,
    zoom: Range,
    resolution: int,
    diverged_at: int | None = None,
) -> Figure:
    """The weights visited (``path``, (n, 2), start first, end last) on the loss surface;
    for a run that diverged at iteration ``diverged_at``, the end is its last finite point,
    marked and named so."""
    fig, axes = _two_surfaces(X, t, overview, zoom, resolution, f"{label}: optimisation path")
    start, end = path[0], path[-1]
    steps = f"{len(path) - 1} iteration{'' if len(path) == 2 else 's'}"
    if diverged_at is not None:
        steps = f"diverged at iteration {diverged_at}"
    for ax in axes:
        ax.plot(path[:, 0], path[:, 1], "-o", color="white", markersize=2.5, linewidth=0.6,
                alpha=0.9, label=steps)  # fmt: skip
        # the start on top: a run that moved little (or diverged at once) ends on it
        ax.plot(*start, "o", color="tab:red", markeredgecolor="black", markersize=7, zorder=5,
                label=f"start ({start[0]:.4g}, {start[1]:.4g})")  # fmt: skip
        if diverged_at is None:
            ax.plot(*end, "*", color="white", markeredgecolor="black", markersize=16,
                    label=f"end ({end[0]:.4f}, {end[1]:.4f})")  # fmt: skip
        else:
            ax.plot(*end, "X", color="tab:red", markeredgecolor="black", markersize=12,
                    label=f"last finite point ({end[0]:.4g}, {end[1]:.4g})")  # fmt: skip
    fig.legend(
        *axes[0].get_legend_handles_labels(),
        loc="lower center",
        bbox_to_anchor=(0.46, 0.04),
        ncols=3,
    )
    return fig


def training_curves(
    columns: Mapping[str, np.ndarray], label: str, diverged_at: int | None = None
) -> Figure:
    """Loss per iteration (log scale) and the two weights per iteration; points marked
    where there are few; a run that diverged at iteration ``diverged_at`` is said so (an
    x at its last finite loss, a red line where it blew up)."""
    fig, ax_loss, ax_w = two_rows(label, "loss and weights per iteration")
    it = np.arange(len(columns["loss"]))
    floor = zero_floor(columns["loss"])  # an exact solution reaches loss 0
    dots = "-o" if len(it) <= 30 else "-"  # a curve of a few points: each one seen
    loss = on_log_axis(columns["loss"], floor)
    ax_loss.plot(it, loss, dots, color="tab:purple", markersize=4)
    if diverged_at is not None and len(it):
        for ax in (ax_loss, ax_w):
            ax.axvline(diverged_at, color="tab:red", linestyle="--", linewidth=1)
            ax.set_xlim(-0.5, max(diverged_at, len(it) - 1) + 0.5)
        ax_loss.plot(it[-1], loss[-1], "x", color="tab:red", markersize=10, mew=2)
        ax_loss.annotate(f"diverged at iteration {diverged_at}: the loss overflowed",
                         (diverged_at, loss[-1]), xytext=(-6, -14), textcoords="offset points",
                         ha="right", color="tab:red", fontsize=9)  # fmt: skip
    ax_loss.set_yscale("log")
    log_axis(ax_loss.yaxis)
    mark_zero(ax_loss, floor)
    ax_loss.set_ylabel(f"loss {XI} (log scale)")
    ax_loss.grid(True, which="major", alpha=0.3)
    ax_w.plot(it, columns["wx"], dots, label=WX, color="tab:blue", markersize=4)
    ax_w.plot(it, columns["wrec"], dots, label=WREC, color="tab:orange", markersize=4)
    ax_w.set_ylabel("weight")
    ax_w.set_xlabel("iteration")
    ax_w.grid(True, alpha=0.3)
    ax_w.legend()
    return fig


def steps(columns: Mapping[str, np.ndarray], label: str) -> Figure:
    """|gradient| and step size per weight per iteration, both on log scales."""
    fig, ax_g, ax_s = two_rows(label, "gradients and step sizes per iteration")
    grads = [np.abs(columns[f"grad_{n}"]) for n in ("wx", "wrec")]
    steps_ = [np.abs(columns[f"step_{n}"]) for n in ("wx", "wrec")]
    floors = {ax_g: zero_floor(*grads), ax_s: zero_floor(*steps_)}
    for i, (name, colour) in enumerate((("wx", "tab:blue"), ("wrec", "tab:orange"))):
        grad = on_log_axis(grads[i], floors[ax_g])
        step = on_log_axis(steps_[i], floors[ax_s])
        ax_g.plot(np.arange(len(grad)), grad, color=colour, label=f"|∂{XI}/∂{name}|")
        ax_s.plot(np.arange(len(step)), step, color=colour, label=f"step of {name}")
    for ax in (ax_g, ax_s):
        ax.set_yscale("log")
        log_axis(ax.yaxis)
        mark_zero(ax, floors[ax])
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    ax_g.set_ylabel("|gradient| (log scale)")
    ax_s.set_ylabel("step size (log scale)")
    ax_s.set_xlabel("iteration")
    return fig
