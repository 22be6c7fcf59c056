"""The plots layer (matplotlib): each function takes data and returns a Figure; the
caller saves (``save``), logs and closes it. ``run``: a run's figures; ``sweeps``: a
sweep's comparisons; ``basins``: basin maps; ``common``: what they share.

Object-oriented matplotlib only (``Figure``, never pyplot): no global state, no GUI
backend. Drawn for speed as well as for reading: fixed margins (no constrained layout,
~0.4 s a figure), plain Unicode text (no mathtext, ~1 s a run), a loss surface as a
banded image at the grid's resolution rather than contour polygons."""

from __future__ import annotations

from rnnlab.plots.basins import (
    basin_maps,
    basin_maps_side_by_side,
)
from rnnlab.plots.common import (
    CMAP,
    LOSS_CAP,
    LOSS_FLOOR,
    POINT_COLOURS,
    POINTS_TITLE,
    RC,
    SAVE_METADATA,
    WREC,
    WX,
    XI,
    Range,
    Rect,
    colorbar,
    colours,
    decade,
    grid_image,
    log_axis,
    log_levels,
    mark_points,
    mark_zero,
    on_log_axis,
    panel_grid,
    save,
    surface_grid,
    surface_panel,
    two_rows,
    zero_floor,
)
from rnnlab.plots.run import (
    gradient_over_time,
    loss_surface,
    steps,
    training_curves,
    trajectory,
)
from rnnlab.plots.sweeps import (
    optimisation_history,
    sweep_loss_curves,
    sweep_trajectories,
    valley_matrix,
)

__all__ = [
    "CMAP",
    "LOSS_CAP",
    "LOSS_FLOOR",
    "POINTS_TITLE",
    "POINT_COLOURS",
    "RC",
    "SAVE_METADATA",
    "WREC",
    "WX",
    "XI",
    "Range",
    "Rect",
    "basin_maps",
    "basin_maps_side_by_side",
    "colorbar",
    "colours",
    "decade",
    "gradient_over_time",
    "grid_image",
    "log_axis",
    "log_levels",
    "loss_surface",
    "mark_points",
    "mark_zero",
    "on_log_axis",
    "optimisation_history",
    "panel_grid",
    "save",
    "steps",
    "surface_grid",
    "surface_panel",
    "sweep_loss_curves",
    "sweep_trajectories",
    "training_curves",
    "trajectory",
    "two_rows",
    "valley_matrix",
    "zero_floor",
]
