"""Every figure of a run. Each function takes data and returns a matplotlib Figure.

Object-oriented matplotlib only (``Figure``, never pyplot): no global state, no GUI
backend, and the caller saves, logs and closes. Loss surfaces come from the closed form
in ``rnn``, so high resolutions cost milliseconds.

Drawn for speed as well as for reading: every figure has fixed margins (no constrained
layout, which cost ~0.4 s a figure), text is plain Unicode (wx, ξ, 10⁴; no mathtext,
~1 s a run), and a loss surface is a banded image (one colour per log level, as filled
contours would draw it, at the grid's resolution) rather than contour polygons.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.patches
import numpy as np
from matplotlib.colors import BoundaryNorm, LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from rnnlab import rnn

CMAP = "viridis"
LOSS_FLOOR = 1e-2  # losses below this share the lowest colour
LOSS_CAP = 1e20  # loss curves are cut here: past it a run has blown up, whatever the value
POINT_COLOURS = ("tab:red", "tab:blue", "tab:pink", "tab:cyan", "tab:green", "tab:orange")
# Fixed metadata and SVG ids: the same inputs give the same bytes.
SAVE_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Producer": None, "Creator": None},
}
RC = {"svg.hashsalt": "rnnlab", "svg.fonttype": "path", "pdf.fonttype": 42}
WX, WREC, XI = "wx", "wrec", "ξ"  # the project's names; ξ is the lab's loss
POINTS_TITLE = f"({WX}, {WREC})"

Range = Sequence[float]  # [wx_min, wx_max, wrec_min, wrec_max]
Rect = tuple[float, float, float, float]  # left, bottom, width, height (figure fraction)

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def decade(value: float, _pos: int | None = None) -> str:
    """A power of ten as text with a Unicode exponent ("10⁴", "-10⁻²"); others in %g."""
    if value == 0:
        return "0"
    exponent = np.log10(abs(value))
    if not np.isclose(exponent, round(exponent)):
        return f"{value:g}"
    sign = "-" if value < 0 else ""
    return f"{sign}10{str(round(exponent)).translate(_SUPERSCRIPT)}"


def _log_axis(axis) -> None:
    """Major ticks at powers of ten (at most ~10), labelled without mathtext."""
    axis.set_major_locator(LogLocator(numticks=10))
    axis.set_major_formatter(FuncFormatter(decade))
    axis.set_minor_formatter(FuncFormatter(lambda *_: ""))


def zero_floor(*series: np.ndarray) -> float | None:
    """Where a log axis draws exact zeros of ``series``: a decade below their smallest
    positive value (1e-16 if none is positive); None when no value is zero."""
    values = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in series] or [[]])
    values = values[np.isfinite(values)]
    if not np.any(values == 0):
        return None
    positive = values[values > 0]
    top = np.floor(np.log10(positive.min())) - 1 if positive.size else -16.0
    return float(10.0**top)


def on_log_axis(values: np.ndarray, floor: float | None) -> np.ndarray:
    """``values`` as a log axis can draw them: zeros at ``floor``, which the axis then
    says in a dotted line labelled "0 drawn here" (a log axis has no 0)."""
    values = np.asarray(values, dtype=float)
    if floor is None:
        return values
    return np.where(values == 0, floor, values)


def mark_zero(ax, floor: float | None) -> None:
    """The dotted line of ``on_log_axis``'s zeros, with its label."""
    if floor is None:
        return
    ax.axhline(floor, color="grey", linestyle=":", linewidth=1)
    ax.annotate(
        f"0 drawn at {decade(floor)} (log axis)",
        xy=(1.0, floor),
        xycoords=("axes fraction", "data"),
        xytext=(-4, 3),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=8,
        color="grey",
    )


def surface_grid(
    X: np.ndarray, t: np.ndarray, bounds: Range, resolution: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wx, wrec, loss) on a resolution x resolution grid; loss rows follow wrec."""
    wx = np.linspace(bounds[0], bounds[1], resolution)
    wrec = np.linspace(bounds[2], bounds[3], resolution)
    return wx, wrec, rnn.loss_surface(X, t, wx, wrec)


def _log_levels(*surfaces: np.ndarray) -> np.ndarray:
    """Shared log-spaced levels (3 per decade) for several panels.

    The range runs from the smallest loss shown, but not below ``LOSS_FLOOR`` (the
    surface reaches 0 at the exact solution; below the floor all is one colour), to the
    largest.
    """
    finite = np.concatenate([s[np.isfinite(s) & (s > 0)].ravel() for s in surfaces])
    lo = max(np.floor(np.log10(finite.min())), np.log10(LOSS_FLOOR))
    hi = max(np.ceil(np.log10(finite.max())), lo + 1)
    return 10.0 ** np.linspace(lo, hi, round((hi - lo) * 3) + 1)


def _surface_panel(ax, wx, wrec, loss, levels: np.ndarray, bounds: Range):
    """The loss as bands of the log ``levels`` (one colour per band, below and above
    the range extended), drawn as an image of the grid's cells."""
    cmap = matplotlib.colormaps[CMAP]
    norm = BoundaryNorm(levels, cmap.N, extend="both")
    dx, dy = (wx[-1] - wx[0]) / (len(wx) - 1), (wrec[-1] - wrec[0]) / (len(wrec) - 1)
    image = ax.imshow(
        np.where(np.isfinite(loss), loss, levels[-1] * 10),
        origin="lower",
        extent=(wx[0] - dx / 2, wx[-1] + dx / 2, wrec[0] - dy / 2, wrec[-1] + dy / 2),
        cmap=cmap,
        norm=norm,
        interpolation="nearest",
    )
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_xlabel(WX)
    ax.set_ylabel(WREC)
    ax.set_aspect("equal")
    return image


def _colorbar(fig: Figure, image, cax, levels: np.ndarray) -> None:
    cax.set_label("<colorbar>")  # as matplotlib names the axes it makes for a colorbar
    cbar = fig.colorbar(image, cax=cax, extend="both")
    decades = levels[np.isclose(np.log10(levels), np.round(np.log10(levels)))]
    step = max(1, int(np.ceil(len(decades) / 12)))
    cbar.set_ticks(decades[::step])
    cbar.ax.yaxis.set_major_formatter(FuncFormatter(decade))
    cbar.ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    cbar.set_label(f"loss {XI} (log scale)")


def _two_surfaces(X, t, overview: Range, zoom: Range, resolution: int, title: str):
    fig = Figure(figsize=(11, 5.4))
    axes = [fig.add_axes((0.05, 0.27, 0.37, 0.62)), fig.add_axes((0.46, 0.27, 0.37, 0.62))]
    cax = fig.add_axes((0.845, 0.27, 0.014, 0.62))
    grids = [surface_grid(X, t, b, resolution) for b in (overview, zoom)]
    levels = _log_levels(grids[0][2], grids[1][2])
    image = None
    for ax, (wx, wrec, loss), bounds, name in zip(
        axes, grids, (overview, zoom), ("overview", "zoom"), strict=True
    ):
        image = _surface_panel(ax, wx, wrec, loss, levels, bounds)
        ax.set_title(name)
    _colorbar(fig, image, cax, levels)
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
        _mark_points(ax, points)
    if points:
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            loc="lower center",
            bbox_to_anchor=(0.46, 0.01),
            ncols=min(len(points), 3),
            title=POINTS_TITLE,
        )
    return fig


def _mark_points(ax, points: Mapping[str, Sequence[float]]) -> None:
    """The named points as coloured dots, labelled "name (wx, wrec)" for a legend."""
    for (name, (px, py)), colour in zip(points.items(), _colours(len(points)), strict=True):
        ax.plot(
            px,
            py,
            "o",
            color=colour,
            markeredgecolor="white",
            markersize=7,
            label=f"{name} ({px:g}, {py:g})",
        )


def _colours(n: int) -> list:
    if n <= len(POINT_COLOURS):
        return list(POINT_COLOURS[:n])
    cmap = matplotlib.colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def gradient_over_time(curves: Mapping[str, tuple[float, float, np.ndarray]]) -> Figure:
    """d loss / d S_k against timestep k for each named point (wx, wrec, gradients).

    The gradient flows backwards from k = T at the left to k = 0 at the right, on a
    symmetric log scale, so growth, decay and sign flips all show.
    """
    fig = Figure(figsize=(10, 4.8))
    ax = fig.add_axes((0.1, 0.12, 0.62, 0.8))
    peak = 1.0
    for (name, (wx, wrec, g)), colour in zip(curves.items(), _colours(len(curves)), strict=True):
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
) -> Figure:
    """The weights visited (``path``, (n, 2), start first, end last) on the loss surface."""
    fig, axes = _two_surfaces(X, t, overview, zoom, resolution, f"{label}: optimisation path")
    start, end = path[0], path[-1]
    for ax in axes:
        ax.plot(
            path[:, 0],
            path[:, 1],
            "-o",
            color="white",
            markersize=2.5,
            linewidth=0.6,
            alpha=0.9,
            label=f"{len(path) - 1} iterations",
        )
        ax.plot(
            *start,
            "o",
            color="tab:red",
            markeredgecolor="black",
            markersize=9,
            label=f"start ({start[0]:.4g}, {start[1]:.4g})",
        )
        ax.plot(
            *end,
            "*",
            color="white",
            markeredgecolor="black",
            markersize=16,
            label=f"end ({end[0]:.4f}, {end[1]:.4f})",
        )
    fig.legend(
        *axes[0].get_legend_handles_labels(),
        loc="lower center",
        bbox_to_anchor=(0.46, 0.04),
        ncols=3,
    )
    return fig


def _two_rows(label: str, title: str):
    fig = Figure(figsize=(10, 6.5))
    top = fig.add_axes((0.09, 0.53, 0.88, 0.39))
    bottom = fig.add_axes((0.09, 0.08, 0.88, 0.39), sharex=top)
    top.tick_params(labelbottom=False)
    fig.suptitle(f"{label}: {title}", y=0.97)
    return fig, top, bottom


def training_curves(columns: Mapping[str, np.ndarray], label: str) -> Figure:
    """Loss per iteration (log scale) and the two weights per iteration."""
    fig, ax_loss, ax_w = _two_rows(label, "loss and weights per iteration")
    it = np.arange(len(columns["loss"]))
    floor = zero_floor(columns["loss"])  # an exact solution reaches loss 0
    ax_loss.plot(it, on_log_axis(columns["loss"], floor), color="tab:purple")
    ax_loss.set_yscale("log")
    _log_axis(ax_loss.yaxis)
    mark_zero(ax_loss, floor)
    ax_loss.set_ylabel(f"loss {XI} (log scale)")
    ax_loss.grid(True, which="major", alpha=0.3)
    ax_w.plot(it, columns["wx"], label=WX, color="tab:blue")
    ax_w.plot(it, columns["wrec"], label=WREC, color="tab:orange")
    ax_w.set_ylabel("weight")
    ax_w.set_xlabel("iteration")
    ax_w.grid(True, alpha=0.3)
    ax_w.legend()
    return fig


def steps(columns: Mapping[str, np.ndarray], label: str) -> Figure:
    """|gradient| and step size per weight per iteration, both on log scales."""
    fig, ax_g, ax_s = _two_rows(label, "gradients and step sizes per iteration")
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
        _log_axis(ax.yaxis)
        mark_zero(ax, floors[ax])
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    ax_g.set_ylabel("|gradient| (log scale)")
    ax_s.set_ylabel("step size (log scale)")
    ax_s.set_xlabel("iteration")
    return fig


def save(fig: Figure, path: Path, fmt: str, dpi: int) -> Path:
    """Write ``fig`` to ``path`` with fixed metadata, so equal inputs give equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=SAVE_METADATA[fmt])
    path.write_bytes(buf.getvalue())
    return path


def _panel_grid(n: int, width: float, height: float, right: float = 0.0):
    """n panels of ``width`` x ``height`` inches in rows of 2 or 3, with fixed margins
    (``right`` inches kept free at the right, for a colorbar)."""
    cols = min(n, 2 if n <= 4 else 3)
    rows = int(np.ceil(n / cols))
    top, bottom = 0.7, 0.3  # inches: title, and the lowest axis labels
    W, H = width * cols + right, height * rows + top + bottom
    fig = Figure(figsize=(W, H))
    axes = []
    for i in range(n):
        r, c = divmod(i, cols)
        left = (c * width + 0.75) / W
        low = (H - top - (r + 1) * height + 0.55) / H
        axes.append(fig.add_axes((left, low, (width - 1.0) / W, (height - 0.95) / H)))
    return fig, axes


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
    fig, axes = _panel_grid(len(groups), 6.0, 5.4, right=1.0)
    wx, wrec, loss = surface_grid(X, t, bounds, resolution)
    levels = _log_levels(loss)
    names = sorted({label for runs in groups.values() for label, _, _ in runs})
    colour = dict(zip(names, _colours(len(names)), strict=True))
    image = None
    for ax, (panel, runs) in zip(axes, groups.items(), strict=True):
        image = _surface_panel(ax, wx, wrec, loss, levels, bounds)
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
    _colorbar(fig, image, cax, levels)
    fig.suptitle("Every run on the loss surface (o start, * end, X diverged)", y=0.98)
    return fig


def sweep_loss_curves(groups: Mapping[str, Sequence[tuple[str, np.ndarray, bool]]]) -> Figure:
    """Loss per iteration of every run (log scale), one panel per group; a diverged run's
    curve ends in an x where it blew up."""
    fig, axes = _panel_grid(len(groups), 6.0, 4.2)
    every = [np.asarray(loss, dtype=float) for runs in groups.values() for _, loss, _ in runs]
    floor = zero_floor(*every)  # a run that solved the task exactly reaches loss 0
    finite = np.concatenate(every or [np.empty(0)])
    finite = finite[np.isfinite(finite)]
    finite = np.where(finite == 0, floor or 0, finite)
    finite = finite[finite > 0]
    # a diverging run's last losses can reach 1e300: cap the axis where the story is told
    ylim = (finite.min() / 3, min(finite.max() * 3, LOSS_CAP)) if finite.size else (1e-2, 1.0)
    names = sorted({label for runs in groups.values() for label, _, _ in runs})
    colour = dict(zip(names, _colours(len(names)), strict=True))
    for ax, (panel, runs) in zip(axes, groups.items(), strict=True):
        for label, loss, diverged in runs:
            if len(loss) == 0:
                continue
            it = np.arange(len(loss))
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
        _log_axis(ax.yaxis)
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
            values[rows.index(r), columns.index(c)] = max(value, 1)
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
            colour = "white" if norm(max(value, 1)) > 0.6 else "black"
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
    _log_axis(cbar.ax.yaxis)
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


def _grid_image(ax, values: np.ndarray, extent, **style):
    """One value per start of a grid (rows follow wrec), drawn as square cells."""
    return ax.imshow(
        values, origin="lower", extent=extent, aspect="auto", interpolation="nearest", **style
    )


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
    axes = np.array(axes, dtype=object)
    extent = (bounds[0], bounds[1], bounds[2], bounds[3])
    lo, hi, loss_cmap, iter_cmap, diverged_cmap = _basin_scales(maps)
    for row, (name, m) in zip(axes, maps.items(), strict=True):
        diverged = m["diverged_at"] >= 0
        loss = np.ma.masked_invalid(np.where(diverged, np.nan, m["final_loss"]))
        im = _grid_image(row[0], loss, extent, cmap=loss_cmap, norm=LogNorm(vmin=lo, vmax=hi))
        pos = row[0].get_position()
        cax = fig.add_axes((pos.x1 + 0.1 / W, pos.y0, 0.13 / W, pos.height))
        cbar = fig.colorbar(im, cax=cax, extend="min")
        _log_axis(cbar.ax.yaxis)
        cbar.set_label(f"final loss (log scale; black: < {lo:.2g})")
        its = np.ma.masked_less(m["first_converged"].astype(float), 0)
        im2 = _grid_image(row[1], its, extent, cmap=iter_cmap, vmin=0, vmax=iterations)
        pos = row[1].get_position()
        cax2 = fig.add_axes((pos.x1 + 0.1 / W, pos.y0, 0.13 / W, pos.height))
        fig.colorbar(im2, cax=cax2).set_label(f"iterations to loss < {tolerance:g}")
        for ax in row:
            _grid_image(ax, np.ma.masked_where(~diverged, diverged), extent, cmap=diverged_cmap)
            _mark_points(ax, points)
            ax.set_xlabel(f"start {WX}")
            ax.set_ylabel(f"start {WREC}")
        conv, div = float(np.mean(m["first_converged"] >= 0)), float(np.mean(diverged))
        row[0].set_title(f"{name}: final loss (red: diverged, {div:.0%})")
        row[1].set_title(f"{name}: iterations to converge ({conv:.0%} did; grey: never)")
    if points:
        fig.legend(
            *axes[0, 0].get_legend_handles_labels(),
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
        im1 = _grid_image(top, loss, extent, cmap=loss_cmap, norm=LogNorm(vmin=lo, vmax=hi))
        its = np.ma.masked_less(m["first_converged"].astype(float), 0)
        im2 = _grid_image(bottom, its, extent, cmap=iter_cmap, vmin=0, vmax=iterations)
        images = [im1, im2]
        for ax in (top, bottom):
            _grid_image(ax, np.ma.masked_where(~diverged, diverged), extent, cmap=diverged_cmap)
            _mark_points(ax, points)
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
            _log_axis(cbar.ax.yaxis)
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
