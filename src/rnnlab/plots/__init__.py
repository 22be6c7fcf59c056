"""The plots layer (matplotlib, object-oriented, never pyplot): each function takes data
and returns a Figure that the caller saves (``save``), logs and closes."""

from __future__ import annotations

from rnnlab.plots.basins import basin_maps, basin_maps_side_by_side
from rnnlab.plots.common import decade, save, surface_grid, zero_floor
from rnnlab.plots.run import gradient_over_time, loss_surface, steps, training_curves, trajectory
from rnnlab.plots.sweeps import (
    optimisation_history,
    sweep_loss_curves,
    sweep_trajectories,
    valley_matrix,
)
