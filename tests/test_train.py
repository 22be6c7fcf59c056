"""Step rules and the training loop: RProp's sign logic, GD, divergence, tolerance."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rnnlab.core.optim import GradientDescent, RProp
from rnnlab.core.train import optimise


def test_rprop_grows_on_repeated_sign_and_shrinks_on_flip():
    opt = RProp(initial_step=0.1, eta_plus=1.5, eta_minus=0.25)
    w = np.array([0.0, 0.0])
    state = opt.init(w)
    # previous sign starts at 0, so the first step shrinks (as in the lab)
    w, state, step = opt.step(w, np.array([2.0, -3.0]), state)
    np.testing.assert_array_equal(step, [0.025, 0.025])
    np.testing.assert_array_equal(w, [-0.025, 0.025])
    w, state, step = opt.step(w, np.array([5.0, 1.0]), state)  # wx repeats, wrec flips
    np.testing.assert_allclose(step, [0.0375, 0.00625], rtol=1e-15)
    np.testing.assert_allclose(w, [-0.0625, 0.01875], rtol=1e-15)


def test_rprop_step_bounds_clip_delta():
    opt = RProp(initial_step=1.0, eta_plus=2.0, eta_minus=0.5, step_min=0.2, step_max=1.5)
    w, state = np.zeros(2), opt.init(np.zeros(2))
    for _ in range(4):
        w, state, step = opt.step(w, np.array([1.0, 1.0]), state)
        assert np.all(step <= 1.5) and np.all(step >= 0.2)
    np.testing.assert_array_equal(step, [1.5, 1.5])


def test_rprop_is_vectorised_over_starts():
    opt = RProp()
    grads = np.array([[1.0, -2.0], [-3.0, 4.0], [0.0, 1.0]])
    w = np.zeros((3, 2))
    batch_w, _, batch_step = opt.step(w, grads, opt.init(w))
    for i in range(3):
        one_w, _, one_step = opt.step(w[i], grads[i], opt.init(w[i]))
        np.testing.assert_array_equal(batch_w[i], one_w)
        np.testing.assert_array_equal(batch_step[i], one_step)


def test_gradient_descent_step():
    opt = GradientDescent(learning_rate=0.1)
    w, _, step = opt.step(np.array([1.0, 2.0]), np.array([3.0, -4.0]), opt.init(np.zeros(2)))
    np.testing.assert_allclose(w, [0.7, 2.4])
    np.testing.assert_allclose(step, [0.3, 0.4])


def test_gd_from_exploding_start_diverges_cleanly(lab_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings would fail the test
        # from explode_oscillate, without the loss bound: only overflow stops it
        traj = optimise(lab_data.X, lab_data.t, (1.0, -2.0), GradientDescent(1e-5), 500)
    assert traj.status == "diverged"
    assert 0 < traj.iterations < 500 and traj.diverged_at == traj.iterations + 1
    for name, values in traj.columns().items():
        n = traj.iterations if name.startswith("step_") else traj.iterations + 1
        assert len(values) == n, name
        assert np.all(np.isfinite(values)), name
    assert np.all(np.isfinite(traj.final_w)) and np.isfinite(traj.final_loss)
    np.testing.assert_array_equal(traj.final_w, traj.w[-1])
    assert traj.final_loss == traj.loss[-1]


def test_the_history_ends_at_the_final_weights(lab_data):
    traj = optimise(lab_data.X, lab_data.t, (-1.5, 2.0), RProp(), 40)
    assert traj.iterations == 40 and len(traj.loss) == 41 and len(traj.step) == 40
    np.testing.assert_array_equal(traj.w[0], [-1.5, 2.0])
    # each point is the previous one moved by its update
    moved = np.abs(np.diff(traj.w, axis=0))
    np.testing.assert_allclose(moved, traj.step, rtol=1e-12)
    assert traj.final_loss == traj.loss[-1] < traj.loss[0]


def test_loss_bound_stops_a_blow_up_before_the_crossing_iteration(lab_data):
    """GD from explode_oscillate (1, -2) reaches a loss of 5e281 before it overflows; with
    the bound (1e6 x the starting loss) it stops at the first iteration whose loss crosses
    it, and that iteration is not recorded."""
    X, t = lab_data.X, lab_data.t
    free = optimise(X, t, (1.0, -2.0), GradientDescent(1e-5), 500, loss_factor=None)
    bounded = optimise(X, t, (1.0, -2.0), GradientDescent(1e-5), 500, loss_factor=1e6)
    assert free.diverged and bounded.diverged
    bound = 1e6 * bounded.loss[0]
    k = bounded.diverged_at
    assert np.all(bounded.loss <= bound) and len(bounded.loss) == k
    assert free.loss[k] > bound  # the crossing iteration, left out of the bounded run
    np.testing.assert_array_equal(bounded.loss, free.loss[:k])  # the same path until then
    assert bounded.final_loss == free.loss[k - 1] and bounded.iterations == k - 1
    assert free.loss.max() > 1e280 and bounded.loss.max() < 1e12  # what the charts are spared


@pytest.mark.parametrize("start", [(1.0, 2.0), (1.0, -2.0), (-1.5, 2.0)])
def test_diverged_runs_keep_a_bounded_history(lab_data, start):
    traj = optimise(lab_data.X, lab_data.t, start, GradientDescent(1e-5), 500, loss_factor=1e6)
    assert traj.diverged and traj.diverged_at >= 1
    assert np.all(traj.loss <= 1e6 * traj.loss[0])
    assert np.all(np.abs(traj.w) <= 10) and np.all(np.abs(traj.grad) < 1e20)


def test_the_loss_bound_leaves_a_descent_alone(lab_data):
    X, t = lab_data.X, lab_data.t
    free = optimise(X, t, (-1.5, 2.0), RProp(), 500, loss_factor=None)
    bounded = optimise(X, t, (-1.5, 2.0), RProp(), 500, loss_factor=1e6)
    np.testing.assert_array_equal(free.loss, bounded.loss)
    np.testing.assert_array_equal(free.w, bounded.w)
    assert bounded.status == "completed"


def test_divergence_at_the_start_records_nothing(lab_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traj = optimise(lab_data.X, lab_data.t, (1e200, 1e200), RProp(), 10)
    assert traj.status == "diverged" and traj.iterations == 0 and traj.final_loss is None
    assert traj.diverged_at == 0 and len(traj.loss) == 0


def test_tolerance_stops_when_loss_falls_below(lab_data):
    traj = optimise(lab_data.X, lab_data.t, (-1.5, 2.0), RProp(), 500, tolerance=1.0)
    assert traj.status == "converged"
    assert traj.final_loss < 1.0 and np.all(traj.loss[:-1] >= 1.0)
    full = optimise(lab_data.X, lab_data.t, (-1.5, 2.0), RProp(), 500)
    # the same path up to the stop
    np.testing.assert_array_equal(traj.loss, full.loss[: traj.iterations + 1])
    assert full.loss[traj.iterations] == traj.final_loss


@pytest.mark.parametrize("start", [(2.0, 1.0), (1.0, 0.5)])
def test_gd_default_rate_descends_from_well_behaved_starts(lab_data, start):
    traj = optimise(lab_data.X, lab_data.t, start, GradientDescent(1e-5), 500)
    assert traj.status == "completed"
    assert traj.final_loss < 0.5 < traj.loss[0]
