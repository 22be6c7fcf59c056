"""The step rules against independent references: hand-worked step sequences (clipping,
iRprop-, iRprop+) and the numbers optax gives (Adam, momentum, Nesterov momentum), and
one start or many giving the same steps."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.core.optim import Adam, GradientDescent, IRPropMinus, IRPropPlus, Momentum, RProp

# --- the optax references ---------------------------------------------------------------
# On f(w) = 0.5 * (w0^2 + 100 * w1^2) (gradient (w0, 100 w1)) from w = (1, -2), five
# steps. Numbers printed by optax 0.2.8 on jax 0.10.2 with jax_enable_x64 (in a
# throwaway virtualenv, not a dependency of rnnlab):
#   optax.adam(0.1, b1=0.9, b2=0.999, eps=1e-8)
#   optax.sgd(0.01, momentum=0.9)  and  optax.sgd(0.01, momentum=0.9, nesterov=True)
# (optax's trace is torch.optim.SGD's momentum buffer: v = m v + g, no dampening.)
CURVATURE = np.array([1.0, 100.0])
START = np.array([1.0, -2.0])
OPTAX_ADAM = [
    [0.900000001, -1.900000000005],
    [0.8004122297123382, -1.8001664856204171],
    [0.701586274504415, -1.7006233912961293],
    [0.603939062682108, -1.6015048942799108],
    [0.507963661927221, -1.5029557800229973],
]
OPTAX_MOMENTUM = [
    [0.99, 0.0],
    [0.9711, 1.8],
    [0.944379, 1.62],
    [0.91088631, -0.16199999999999992],
    [0.8716340258999999, -1.6038000000000001],
]
OPTAX_NESTEROV = [
    [0.981, 1.8000000000000003],
    [0.954261, -4.440892098500626e-16],
    [0.920893941, 1.6946444247878387e-16],
    [0.8819549520209999, -2.465190328815662e-32],
    [0.8384407633205009, 2.218671295934096e-32],
]


def steps_on_the_quadratic(opt, n: int = 5) -> np.ndarray:
    w, state, out = START.copy(), opt.init(START), []
    for _ in range(n):
        w, state, _ = opt.step(w, CURVATURE * w, state, 0.5 * np.sum(CURVATURE * w * w))
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize(
    ("opt", "expected"),
    [
        (Adam(learning_rate=0.1, beta1=0.9, beta2=0.999, epsilon=1e-8), OPTAX_ADAM),
        (Momentum(learning_rate=0.01, momentum=0.9), OPTAX_MOMENTUM),
        (Momentum(learning_rate=0.01, momentum=0.9, nesterov=True), OPTAX_NESTEROV),
    ],
    ids=["adam", "momentum", "nesterov"],
)
def test_adam_and_momentum_give_optax_numbers(opt, expected):
    np.testing.assert_allclose(steps_on_the_quadratic(opt), expected, rtol=1e-12, atol=1e-14)


# --- hand-worked sequences -------------------------------------------------------------


def run_sequence(opt, grads, losses=None) -> tuple[list[list[float]], list[list[float]]]:
    """Feed a fixed sequence of gradients (and losses) from w = (0, 0): the weights and
    step sizes after each step."""
    w = np.zeros(2)
    state, ws, steps = opt.init(w), [], []
    for k, g in enumerate(grads):
        loss = None if losses is None else losses[k]
        w, state, step = opt.step(w, np.array(g, dtype=float), state, loss)
        ws.append(list(w))
        steps.append(list(step))
    return ws, steps


# weight 0's gradients keep, flip, keep, flip; weight 1's flip at once
GRADS = [(1, -2), (1, 3), (-1, 3), (-1, 3), (1, -1)]
EXACT = {"initial_step": 0.1, "eta_plus": 2.0, "eta_minus": 0.5}


def test_irprop_minus_by_hand():
    # weight 0: step 0.1 (no previous sign), 0.2 (kept), flip: 0.1 and no move, then
    # 0.1 again (the flip forgotten: no previous sign), flip: 0.05 and no move.
    # weight 1: -2 moves it +0.1; flip: 0.05, no move; 0.05 (forgotten); kept: 0.1;
    # flip: 0.05, no move.
    ws, steps = run_sequence(IRPropMinus(**EXACT), GRADS)
    np.testing.assert_allclose(
        ws, [[-0.1, 0.1], [-0.3, 0.1], [-0.3, 0.05], [-0.2, -0.05], [-0.2, -0.05]], atol=1e-15
    )
    np.testing.assert_allclose(
        steps, [[0.1, 0.1], [0.2, 0.0], [0.0, 0.05], [0.1, 0.1], [0.0, 0.0]], atol=1e-15
    )


def test_irprop_plus_by_hand():
    # The same gradients with the loss at each point: 5, 4, 6, 3, 7.
    # weight 0: -0.1, -0.2 (kept); step 3 flips and the loss rose (6 > 4): the last
    # update (-0.2) is undone, w = -0.1; step 4: no previous sign, +0.1 (Delta 0.1):
    # w = 0; step 5 flips and the loss rose (7 > 3): +0.1 undone, w = -0.1.
    # weight 1: +0.1; step 2 flips but the loss fell (4 < 5): no move; step 3: -0.05
    # (Delta 0.05); step 4: kept, -0.1; step 5 flips, loss rose: -0.1 undone, w = 0.05.
    ws, steps = run_sequence(IRPropPlus(**EXACT), GRADS, losses=[5, 4, 6, 3, 7])
    np.testing.assert_allclose(
        ws, [[-0.1, 0.1], [-0.3, 0.1], [-0.1, 0.05], [0.0, -0.05], [-0.1, 0.05]], atol=1e-15
    )
    np.testing.assert_allclose(
        steps, [[0.1, 0.1], [0.2, 0.0], [0.2, 0.05], [0.1, 0.1], [0.1, 0.1]], atol=1e-15
    )


def test_irprop_step_bounds_hold():
    # growth capped at step_max 0.15; shrinking floored at step_min 0.08
    _, steps = run_sequence(
        IRPropMinus(**EXACT, step_min=0.08, step_max=0.15), [(1, 1), (1, -1), (1, 1)]
    )
    np.testing.assert_allclose([s[0] for s in steps], [0.1, 0.15, 0.15])
    assert steps[1][1] == 0.0  # the flip: no move, Delta floored at 0.08 ...
    np.testing.assert_allclose(steps[2][1], 0.08)  # ... and used next


def test_gradient_clipping_by_the_whole_vector_norm():
    # ||(3, 4)|| = 5 > 1: scaled to (0.6, 0.8); ||(0.3, 0.4)|| = 0.5 <= 1: unchanged
    opt = GradientDescent(learning_rate=0.1, clip_norm=1.0)
    ws, steps = run_sequence(opt, [(3, 4), (0.3, 0.4)])
    np.testing.assert_allclose(ws, [[-0.06, -0.08], [-0.09, -0.12]], rtol=1e-15)
    np.testing.assert_allclose(steps, [[0.06, 0.08], [0.03, 0.04]], rtol=1e-15)


def test_gd_without_clipping_is_bitwise_the_old_rule():
    rng = np.random.default_rng(0)
    w, g = rng.normal(size=2), rng.normal(size=2) * 1e6
    new, _, step = GradientDescent(learning_rate=1e-5).step(w, g, ())
    assert np.array_equal(new, w - 1e-5 * g) and np.array_equal(step, np.abs(1e-5 * g))


ALL = [
    RProp(),
    GradientDescent(learning_rate=1e-3),
    GradientDescent(learning_rate=1e-2, clip_norm=1.0),
    Momentum(learning_rate=1e-3, nesterov=True),
    Adam(learning_rate=0.05),
    IRPropMinus(),
    IRPropPlus(),
]


@pytest.mark.parametrize("opt", ALL, ids=lambda o: f"{o.name}")
def test_many_starts_step_as_each_alone(opt):
    """The basin maps' (2, M) arrays: column m steps exactly as start m alone."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(2, 6))
    many, alone = opt.init(w), [opt.init(w[:, m]) for m in range(6)]
    for _ in range(4):
        grads = rng.normal(size=(2, 6)) * 10
        losses = rng.uniform(1, 2, size=6)
        w_many, many, step_many = opt.step(w, grads, many, losses)
        for m in range(6):
            w_one, alone[m], step_one = opt.step(w[:, m], grads[:, m], alone[m], losses[m])
            assert np.array_equal(w_many[:, m], w_one) and np.array_equal(step_many[:, m], step_one)
        w = w_many


# --- everywhere the lab's two run -------------------------------------------------------


@pytest.mark.slow  # end to end: a run in a store, its rerun, its model loaded
@pytest.mark.parametrize(
    ("option", "name", "label"),
    [
        ("gd_clip", "gd_clip", "gradient descent (lr=0.01, clipped at 1)"),
        ("momentum", "momentum", "momentum 0.9 (lr=1e-06)"),
        ("adam", "adam", "Adam (lr=0.01)"),
        ("irprop_minus", "irprop_minus", "iRprop-"),
        ("irprop_plus", "irprop_plus", "iRprop+"),
    ],
)
def test_each_optimizer_runs_reruns_and_serves_its_model(tmp_path, option, name, label):
    """A run through the Python API (the CLI's composition), recorded with its optimizer's
    params, name and description; rerun from the store bit for bit; its model loads."""
    import mlflow
    from conftest import store_overrides
    from mlflow.tracking import MlflowClient

    import rnnlab
    from rnnlab.cli.rerun import rerun_run
    from rnnlab.jobs.recorder import LocalRecorder

    overrides = [*store_overrides(tmp_path), f"optimizer={option}", "init=steady"]
    result = rnnlab.run([*overrides, "plots=none", "iterations=60"], output_dir=tmp_path / "job")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    assert run.data.params["optimizer.name"] == name
    assert run.data.tags["optimizer"] == option and run.info.run_name == f"{option}-steady"
    assert run.data.tags["mlflow.note.content"].startswith(f"{label} from steady (2, 1)")
    assert len(client.get_metric_history(result.run_id, "loss")) == 61
    again = rerun_run(LocalRecorder(quiet=True), client, result.run_id, [], tmp_path / "reruns")
    first, second = (
        [m.value for m in client.get_metric_history(r, "wx")] for r in (result.run_id, again.run_id)
    )
    assert first == second
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    wx, wrec = result.trajectory.final_w
    np.testing.assert_allclose(model.predict(np.array([[1.0, 2.0]])), [wx * 1.0 * wrec + 2.0 * wx])
