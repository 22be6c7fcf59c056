"""Basin maps: the vectorised path equals the single-start path, start by start."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    compose_config,
    new_store,
    run_cli,
    store_overrides,
)
from mlflow.tracking import MlflowClient

from rnnlab.core import basin, rnn
from rnnlab.core.optim import Adam, GradientDescent, IRPropMinus, IRPropPlus, Momentum, RProp
from rnnlab.core.train import optimise


def test_closed_form_coefficients_give_the_bptt_loss_and_gradient(lab_data):
    rng = np.random.default_rng(3)
    w = rng.uniform(-3, 3, size=(2, 200))
    coef = basin.coefficients(lab_data.X, lab_data.t)
    loss, grad = basin.loss_and_grad(coef, w)
    for j in range(w.shape[1]):
        ref_loss, ref_grad = rnn.loss_and_grad(lab_data.X, lab_data.t, w[:, j])
        A, B, C, dA, dB = rnn.quadratic_coefficients(lab_data.X, lab_data.t, w[1:, j])
        scale = w[0, j] ** 2 * A[0] + abs(2 * w[0, j] * B[0]) + C
        assert abs(loss[j] - ref_loss) <= 1e-9 * max(ref_loss, 1e-3 * scale)
        g_scale = [
            abs(2 * w[0, j] * A[0]) + abs(2 * B[0]),
            abs(w[0, j] ** 2 * dA[0]) + abs(2 * w[0, j] * dB[0]),
        ]
        for i in range(2):
            assert abs(grad[i, j] - ref_grad[i]) <= 1e-9 * max(abs(ref_grad[i]), 1e-3 * g_scale[i])


# The defaults of experiment=basin_map. (With a learning rate large enough to make the
# dynamics chaotic, e.g. gd at 3e-4, the closed form's and BPTT's last-bit rounding
# differences grow until the paths part: equal maths, not equal bits.)
@pytest.mark.parametrize("loss_factor", [1e6, None], ids=["bounded", "overflow-only"])
@pytest.mark.parametrize(
    "opt",
    [
        RProp(),
        GradientDescent(1e-5),
        # experiment=basin_map_optimizers's other optimizers, at their chosen rates
        GradientDescent(0.01, clip_norm=1.0),
        Momentum(1e-6),
        Adam(0.01),
        IRPropMinus(),
        IRPropPlus(),
    ],
    ids=["rprop", "gd", "gd_clip", "momentum", "adam", "irprop_minus", "irprop_plus"],
)
def test_vectorised_equals_single_start_path(lab_data, opt, loss_factor):
    X, t = lab_data.X, lab_data.t
    g = np.linspace(-3, 3, 30)
    starts = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    tol = 0.2
    res = basin.optimise_many(X, t, starts, opt, 200, tol, 400, None, loss_factor)  # 3 chunks
    rng = np.random.default_rng(7)
    sample = rng.choice(len(starts), 20, replace=False)
    n_div = 0
    for i in sample:
        traj = optimise(X, t, tuple(starts[i]), opt, 200, loss_factor=loss_factor)
        assert traj.diverged == res.diverged[i], starts[i]
        if traj.diverged:
            n_div += 1
            assert res.diverged_at[i] == traj.diverged_at  # the same iteration
            assert np.isnan(res.final_loss[i])
            continue
        assert np.isclose(res.final_loss[i], traj.final_loss, rtol=1e-6), starts[i]
        below = np.flatnonzero(traj.loss < tol)
        expected = below[0] if below.size else -1
        assert res.first_converged[i] == expected, starts[i]
    if isinstance(opt, GradientDescent) and opt.clip_norm is None:
        assert n_div > 0  # the sample includes diverging starts


def test_the_loss_bound_stops_blow_ups_earlier_in_basin_maps(lab_data):
    """With the bound, gradient descent's diverging starts stop at the iteration whose
    loss first exceeds 1e6 x the start's: no later than where overflow stops them, and
    earlier from explode_oscillate (1, -2), where the loss reaches 5e281 unbounded."""
    X, t = lab_data.X, lab_data.t
    starts = np.array([[1.0, 2.0], [1.0, -2.0], [-1.5, 2.0], [2.0, 1.0]])
    opt = GradientDescent(1e-5)
    bounded = basin.optimise_many(X, t, starts, opt, 300, 0.2, loss_factor=1e6)
    free = basin.optimise_many(X, t, starts, opt, 300, 0.2, loss_factor=None)
    np.testing.assert_array_equal(bounded.diverged, [True, True, True, False])
    assert np.all(bounded.diverged_at[:3] <= free.diverged_at[:3])
    assert bounded.diverged_at[1] < free.diverged_at[1]
    for i in range(3):
        traj = optimise(X, t, tuple(starts[i]), opt, 300, loss_factor=None)
        k = bounded.diverged_at[i]
        # the unbounded path crosses the bound (or overflows) at the stopping iteration
        assert k == traj.diverged_at or traj.loss[k] > 1e6 * traj.loss[0]
        assert np.all(traj.loss[:k] <= 1e6 * traj.loss[0])
    assert bounded.final_loss[3] == free.final_loss[3]


@pytest.mark.slow  # a basin map run recorded in a store
def test_basin_run_logs_maps_metrics_and_figure(tmp_path):
    overrides = [
        *store_overrides(tmp_path),
        "experiment=basin_map",
        "basin.resolution=24",
        "iterations=60",
        "plots.dpi=40",
    ]
    from rnnlab.config import to_container
    from rnnlab.jobs import runner
    from rnnlab.jobs.recorder import LocalRecorder

    cfg, recorder = compose_config(overrides), LocalRecorder(quiet=True)
    job = runner.job_of(cfg, to_container(cfg), overrides, tmp_path / "job")
    runner.run_job(job, recorder)
    metrics = {"run_id": recorder.ended[job.key].run_id}
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(metrics["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "basin_map"
    # its own keys as params: it covers every start and carries its optimisers
    p = run.data.params
    assert not any(k.startswith(("init.", "optimizer.", "plots.", "tracking.")) for k in p)
    assert p["basin.resolution"] == "24" and p["basin.bounds"] == "-3.0 3.0 -3.0 3.0"
    assert p["basin.optimizers.gd.learning_rate"] == "1e-05" and p["iterations"] == "60"
    assert p["divergence.loss_factor"] == "1000000.0" and "basin.chunk" not in p
    assert "converged" in run.data.tags["mlflow.note.content"]
    m = run.data.metrics
    for name in ("rprop", "gd"):
        assert 0 <= m[f"{name}_fraction_converged"] <= 1
        assert 0 <= m[f"{name}_fraction_diverged"] <= 1
    assert m["gd_fraction_diverged"] > 0.3 and m["rprop_fraction_diverged"] == 0
    paths = {f.path for f in client.list_artifacts(run.info.run_id, "results")}
    assert "results/basin_map.npz" in paths
    assert "figures/basin_map.png" in {
        f.path for f in client.list_artifacts(run.info.run_id, "figures")
    }
    npz = np.load(
        client.download_artifacts(run.info.run_id, "results/basin_map.npz", str(tmp_path))
    )
    assert npz["rprop_final_loss"].shape == (24, 24) and len(npz["wx"]) == 24
    div = npz["gd_diverged_at"] >= 0
    assert np.isclose(div.mean(), m["gd_fraction_diverged"])
    assert np.all(np.isnan(npz["gd_final_loss"][div]))


@pytest.mark.slow
def test_basin_map_command_is_quiet_in_logs(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(
        ["experiment=basin_map", "basin.resolution=32", "iterations=50", "plots.dpi=40"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rprop_fraction_converged" in proc.stdout
    assert "it/s" not in proc.stderr and "start/s" not in proc.stderr  # no progress bar


@pytest.mark.parametrize("T", [1, 2, 3, 8, 31])
def test_split_polynomials_work_for_any_sequence_length(T):
    rng = np.random.default_rng(T)
    X = rng.uniform(size=(6, T)).round(2)
    t = X.sum(axis=1)
    w = rng.uniform(-2, 2, size=(2, 40))
    loss, grad = basin.loss_and_grad(basin.coefficients(X, t), w)
    ref_loss, ref_grad = rnn.closed_form_loss_and_grad(X, t, w[0], w[1])
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, ref_grad.T, rtol=1e-11, atol=1e-11)


@pytest.mark.slow
def test_basin_map_optimizers_draws_every_optimizer(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    args = ["experiment=basin_map_optimizers", "basin.resolution=12", "iterations=40"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    (run,) = client.search_runs(
        [client.get_experiment_by_name("basin_map_optimizers").experiment_id]
    )
    names = ["rprop", "irprop_minus", "irprop_plus", "gd", "gd_clip", "momentum", "adam"]
    for name in names:
        assert 0 <= run.data.metrics[f"{name}_fraction_converged"] <= 1
    assert run.data.tags["optimizers"].split(",") == [
        "rprop", "gd", "irprop_minus", "irprop_plus", "gd_clip", "momentum", "adam"
    ]  # fmt: skip
    arts = {f.path for f in client.list_artifacts(run.info.run_id, "figures")}
    assert arts == {"figures/basin_map.png"}
