"""The figure functions draw the expected axes, labels and artists."""

from __future__ import annotations

import matplotlib.text
import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from rnnlab import plots
from rnnlab.config import LAB_POINTS
from rnnlab.core.optim import RProp
from rnnlab.core.train import optimise
from rnnlab.jobs import compute

OVERVIEW, ZOOM = [-3, 3, -3, 3], [-0.1, 2.1, -0.1, 2.1]


def surfaces(ax):
    return [c for c in ax.get_children() if isinstance(c, AxesImage)]


def test_surface_grid_uses_the_closed_form_at_the_requested_resolution(lab_data):
    wx, wrec, loss = plots.surface_grid(lab_data.X, lab_data.t, OVERVIEW, 401)
    assert loss.shape == (401, 401) and wx[0] == -3 and wrec[-1] == 3
    assert loss[200, 250] > 0  # row = wrec = 0, column = wx = 0.75
    from rnnlab.core import rnn

    ref = rnn.loss(rnn.forward_states(lab_data.X, wx[250], wrec[200])[:, -1], lab_data.t)
    assert np.isclose(loss[200, 250], ref, rtol=1e-12)


def test_loss_surface_figure(lab_data):
    fig = plots.loss_surface(lab_data.X, lab_data.t, LAB_POINTS, OVERVIEW, ZOOM, 50)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2
    for ax, bounds in zip(panels, (OVERVIEW, ZOOM), strict=True):
        (image,) = surfaces(ax)  # one surface per panel, not two
        # bands of log-spaced levels, 3 a decade, as filled contours would draw them
        norm = image.norm
        assert isinstance(norm, BoundaryNorm)
        steps = np.diff(np.log10(norm.boundaries))
        np.testing.assert_allclose(steps, 1 / 3)
        assert image.get_array().shape == (50, 50)
        assert ax.get_xlim() == tuple(bounds[:2]) and ax.get_ylim() == tuple(bounds[2:])
        assert ax.get_xlabel() == "wx" and ax.get_ylabel() == "wrec"
        markers = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
        assert len(markers) == 6
    cbar = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(cbar) == 1 and "loss" in cbar[0].get_ylabel()
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert "explode (1, 2)" in labels and len(labels) == 6
    # no mathtext: every text is plain (mathtext parsing cost ~1 s a run)
    fig.canvas.draw()
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    assert texts and not any("$" in t for t in texts)
    assert "10²⁰" in [t.get_text() for t in cbar[0].get_yticklabels()]


def test_decade_labels_are_unicode():
    assert plots.decade(1e4) == "10⁴" and plots.decade(-1e-2) == "-10⁻²"
    assert plots.decade(0) == "0" and plots.decade(0.5) == "0.5"


def test_gradient_over_time_figure(lab_data):
    curves = compute.gradient_curves(lab_data, LAB_POINTS)
    fig = plots.gradient_over_time(curves)
    (ax,) = fig.axes
    assert ax.get_yscale() == "symlog"
    assert len(ax.get_lines()) == 6
    assert ax.get_xlim()[0] > ax.get_xlim()[1]  # k runs from T down to 0
    assert "timestep" in ax.get_xlabel() and "S_k" in ax.get_ylabel()
    assert ax.get_yticklabels()[-1].get_text() == "10¹²"
    ticks = ax.get_yticks()
    assert 0 in ticks and np.all(np.diff(ticks) > 0)
    assert [t.get_text() for t in fig.legends[0].get_texts()][1] == "explode (1, 2)"


def test_trajectory_figure(lab_data):
    traj = optimise(lab_data.X, lab_data.t, (-1.5, 2.0), RProp(), 100)
    path = traj.w
    fig = plots.trajectory(lab_data.X, lab_data.t, path, "RProp", OVERVIEW, [0, 2, 0, 2], 40)
    assert "RProp" in fig.get_suptitle()
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for ax in panels:
        lines = ax.get_lines()
        np.testing.assert_array_equal(lines[0].get_xdata(), path[:, 0])
        assert lines[1].get_xdata()[0] == -1.5 and lines[2].get_marker() == "*"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[1] == "start (-1.5, 2)" and labels[2].startswith("end (")


def test_training_curves_and_steps_figures(lab_data):
    traj = optimise(lab_data.X, lab_data.t, (-1.5, 2.0), RProp(), 60)
    fig = plots.training_curves(traj.columns(), "RProp")
    ax_loss, ax_w = fig.axes
    assert ax_loss.get_yscale() == "log" and len(ax_loss.get_lines()[0].get_xdata()) == 61
    assert len(ax_w.get_lines()) == 2 and ax_w.get_xlabel() == "iteration"
    fig = plots.steps(traj.columns(), "RProp")
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]
    np.testing.assert_array_equal(fig.axes[1].get_lines()[0].get_ydata(), traj.step[:, 0])
    assert len(fig.axes[0].get_lines()[0].get_xdata()) == 61  # a gradient at every point
    assert not any(isinstance(c, PathCollection) for c in fig.axes[0].get_children())


def test_sweep_loss_curves_take_x_from_the_logged_steps():
    """Issue 31, 1: a sweep child logs every 5th step of 500; its curve was drawn at
    positions 0-100 under "iteration", as if it converged 5x faster."""
    steps = np.append(np.arange(0, 500, 5), 500)
    loss = np.where(steps < 264, 1.0, 0.01)  # it reaches the valley between 260 and 265
    fig = plots.sweep_loss_curves({"gd": [("gd-vanish", steps, loss, False)]})
    (line,) = fig.axes[0].lines
    x = line.get_xdata()
    assert np.array_equal(x, steps) and x[-1] == 500
    assert x[np.flatnonzero(line.get_ydata() < 0.2)[0]] == 265
    assert fig.axes[0].get_xlabel() == "iteration"


def test_a_run_that_diverged_at_once_says_so_in_its_figures(lab_data):
    """Issue 31, 3: ``optimizer=gd init=explode`` drew an empty frame ("0 iterations", the
    start hidden under the end)."""
    columns = {"loss": np.array([5.2e11]), "wx": np.array([1.0]), "wrec": np.array([2.0])}
    fig = plots.training_curves(columns, "gradient descent", diverged_at=1)
    ax = fig.axes[0]
    assert ax.lines[0].get_marker() == "o"  # the one point is seen
    assert [tuple(line.get_xdata()) for line in ax.lines if line.get_linestyle() == "--"] == [
        (1, 1)
    ]
    assert any(t.get_text().startswith("diverged at iteration 1") for t in ax.texts)
    assert ax.get_xlim()[1] >= 1
    path = np.array([[1.0, 2.0]])
    fig = plots.trajectory(lab_data.X, lab_data.t, path, "gd", OVERVIEW, [0, 2, 0, 2], 20, 1)
    labels = fig.legends[0].get_texts()
    assert [t.get_text() for t in labels] == [
        "diverged at iteration 1",
        "start (1, 2)",
        "last finite point (1, 2)",
    ]
    start = next(line for line in fig.axes[0].lines if line.get_label().startswith("start"))
    assert start.get_zorder() > max(
        line.get_zorder() for line in fig.axes[0].lines if line is not start
    )
