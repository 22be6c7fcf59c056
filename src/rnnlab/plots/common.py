"""What every figure shares: colours, log axes with a floor for zero, the loss's
colour levels, panel grids, and ``save`` (byte-stable files).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.patches
import numpy as np
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from rnnlab.core import rnn

WX, WREC, XI = "wx", "wrec", "ξ"  # the project's names; ξ is the lab's loss

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


def log_axis(axis) -> None:
    """Major ticks at powers of ten (at most ~10), labelled without mathtext."""
    axis.set_major_locator(LogLocator(numticks=10))
    axis.set_major_formatter(FuncFormatter(decade))
    axis.set_minor_formatter(FuncFormatter(lambda *_: ""))


def zero_floor(*series: np.ndarray) -> float | None:
    """Where a log axis draws exact zeros of ``series``: a decade below their smallest
    positive value (1e-16 if none is positive); None when no value is zero."""
    values = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in series] or [np.empty(0)])
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


def log_levels(*surfaces: np.ndarray) -> np.ndarray:
    """Shared log-spaced levels (3 per decade) for several panels.

    The range runs from the smallest loss shown, but not below ``LOSS_FLOOR`` (the
    surface reaches 0 at the exact solution; below the floor all is one colour), to the
    largest.
    """
    finite = np.concatenate([s[np.isfinite(s) & (s > 0)].ravel() for s in surfaces])
    lo = max(np.floor(np.log10(finite.min())), np.log10(LOSS_FLOOR))
    hi = max(np.ceil(np.log10(finite.max())), lo + 1)
    return 10.0 ** np.linspace(lo, hi, round((hi - lo) * 3) + 1)


def surface_panel(ax, wx, wrec, loss, levels: np.ndarray, bounds: Range):
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


def colorbar(fig: Figure, image, cax, levels: np.ndarray) -> None:
    cax.set_label("<colorbar>")  # as matplotlib names the axes it makes for a colorbar
    cbar = fig.colorbar(image, cax=cax, extend="both")
    decades = levels[np.isclose(np.log10(levels), np.round(np.log10(levels)))]
    step = max(1, int(np.ceil(len(decades) / 12)))
    cbar.set_ticks(decades[::step])
    cbar.ax.yaxis.set_major_formatter(FuncFormatter(decade))
    cbar.ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    cbar.set_label(f"loss {XI} (log scale)")


def mark_points(ax, points: Mapping[str, Sequence[float]]) -> None:
    """The named points as coloured dots, labelled "name (wx, wrec)" for a legend."""
    for (name, (px, py)), colour in zip(points.items(), colours(len(points)), strict=True):
        ax.plot(
            px,
            py,
            "o",
            color=colour,
            markeredgecolor="white",
            markersize=7,
            label=f"{name} ({px:g}, {py:g})",
        )


def colours(n: int) -> list:
    if n <= len(POINT_COLOURS):
        return list(POINT_COLOURS[:n])
    cmap = matplotlib.colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def two_rows(label: str, title: str):
    fig = Figure(figsize=(10, 6.5))
    top = fig.add_axes((0.09, 0.53, 0.88, 0.39))
    bottom = fig.add_axes((0.09, 0.08, 0.88, 0.39), sharex=top)
    top.tick_params(labelbottom=False)
    fig.suptitle(f"{label}: {title}", y=0.97)
    return fig, top, bottom


def save(fig: Figure, path: Path, fmt: str, dpi: int) -> Path:
    """Write ``fig`` to ``path`` with fixed metadata, so equal inputs give equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):  # type: ignore[arg-type]
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=SAVE_METADATA[fmt])
    path.write_bytes(buf.getvalue())
    return path


def panel_grid(n: int, width: float, height: float, right: float = 0.0):
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


def grid_image(ax, values: np.ndarray, extent, **style):
    """One value per start of a grid (rows follow wrec), drawn as square cells."""
    return ax.imshow(
        values, origin="lower", extent=extent, aspect="auto", interpolation="nearest", **style
    )
