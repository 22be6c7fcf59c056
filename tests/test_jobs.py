"""One job (``jobs.runner.run_job``, through the Python API) against a real SQLite store:
lifecycle, figures, and rnnlab-plot (marked slow: every test is a whole run)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import store_overrides
from mlflow.tracking import MlflowClient

import rnnlab
from rnnlab.cli.replot import redraw
from rnnlab.jobs import compute, results

# every test here is a whole run recorded in a real store: end to end
pytestmark = pytest.mark.slow

FAST = ["plots=none", "iterations=50"]


def execute(tmp_path, overrides):
    return rnnlab.run(store_overrides(tmp_path) + overrides, output_dir=tmp_path / "job")


def client(tmp_path):
    return MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")


def test_failed_gradient_check_ends_the_run_failed_with_the_error(tmp_path):
    with pytest.raises(results.GradientCheckFailed, match="relative error"):
        execute(tmp_path, [*FAST, "gradcheck.rtol=1e-15"])
    (run,) = client(tmp_path).search_runs(["1"])
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith("GradientCheckFailed: numerical gradient of")
    assert "loss" not in run.data.metrics  # stopped before training


def test_an_error_inside_training_ends_the_run_failed(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(compute, "optimise", broken)
    with pytest.raises(RuntimeError, match="boom"):
        execute(tmp_path, FAST)
    (run,) = client(tmp_path).search_runs(["1"])
    assert run.info.status == "FAILED" and run.data.tags["error"] == "RuntimeError: boom"
    paths = [f.path for f in client(tmp_path).list_artifacts(run.info.run_id)]
    assert "error.txt" in paths


def test_ctrl_c_inside_training_ends_the_run_killed(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(compute, "optimise", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute(tmp_path, FAST)
    (run,) = client(tmp_path).search_runs(["1"])
    assert run.info.status == "KILLED"


def test_bad_value_creates_no_run(tmp_path):
    from rnnlab.config import ConfigError

    with pytest.raises(ConfigError):
        execute(tmp_path, [*FAST, "optimizer.eta_plus=0.9"])
    c = client(tmp_path)
    assert sum(len(c.search_runs([e.experiment_id])) for e in c.search_experiments()) == 0


def test_tolerance_run_logs_converged(tmp_path):
    result = execute(tmp_path, ["plots=none", "tolerance=1.0"])
    assert result.trajectory.status == "converged"
    run = client(tmp_path).get_run(result.run_id)
    assert run.data.tags["status"] == "converged"
    assert run.data.metrics["iterations"] == result.trajectory.iterations < 500


def test_a_run_without_figures_is_redrawn_with_every_figure(tmp_path):
    """rnnlab-plot on a run logged with plots=none draws all five (from its logged
    config's ranges), not nothing."""
    run = execute(tmp_path, [*FAST, "plots.resolution=40", "plots.dpi=40"])
    assert not client(tmp_path).list_artifacts(run.run_id, "figures")
    drawn = redraw(run.run_id, f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "drawn")
    names = ["gradient_over_time", "loss_surface", "steps", "training_curves", "trajectory"]
    assert sorted(p.name for p in drawn) == [f"{n}.png" for n in names]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in drawn)


def test_figures_are_logged_deterministic_and_redrawn_identically(tmp_path):
    overrides = ["plots.resolution=120", "iterations=200", "plots.dpi=60"]
    first = execute(tmp_path, overrides)
    second_dir = tmp_path / "again"
    rnnlab.run(store_overrides(tmp_path) + overrides, output_dir=second_dir)
    c = client(tmp_path)
    logged = sorted(f.path for f in c.list_artifacts(first.run_id, "figures"))
    names = ["gradient_over_time", "loss_surface", "steps", "training_curves", "trajectory"]
    assert logged == [f"figures/{n}.png" for n in names]
    redrawn = redraw(first.run_id, f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "redrawn")
    assert sorted(p.name for p in redrawn) == [f"{n}.png" for n in names]
    for name in names:
        original = (tmp_path / "job" / "artifacts" / "figures" / f"{name}.png").read_bytes()
        assert original[:8] == b"\x89PNG\r\n\x1a\n"
        assert (second_dir / "artifacts" / "figures" / f"{name}.png").read_bytes() == original, name
        assert (tmp_path / "redrawn" / f"{name}.png").read_bytes() == original, name
        downloaded = c.download_artifacts(first.run_id, f"figures/{name}.png", str(tmp_path))
        assert open(downloaded, "rb").read() == original


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_other_formats_are_deterministic(tmp_path, fmt):
    overrides = [
        "plots.resolution=60",
        "iterations=30",
        f"plots.format={fmt}",
        "plots.figures=[gradient_over_time,steps]",
    ]
    execute(tmp_path, overrides)
    rnnlab.run(store_overrides(tmp_path) + overrides, output_dir=tmp_path / "b")
    for name in ("gradient_over_time", "steps"):
        a = (tmp_path / "job" / "artifacts" / "figures" / f"{name}.{fmt}").read_bytes()
        assert a == (tmp_path / "b" / "artifacts" / "figures" / f"{name}.{fmt}").read_bytes()
        assert a.startswith(b"<?xml" if fmt == "svg" else b"%PDF")


@pytest.mark.parametrize("off", ["plots.enabled=false", "plots.figures=[]"])
def test_plots_can_be_switched_off(tmp_path, off):
    result = execute(tmp_path, ["iterations=20", off])
    assert not (tmp_path / "job" / "artifacts" / "figures").exists()
    assert client(tmp_path).list_artifacts(result.run_id, "figures") == []


def test_redraw_of_unknown_run_is_a_clear_error(tmp_path):
    from rnnlab.store.records import RecordError

    execute(tmp_path, FAST)
    with pytest.raises(RecordError, match="no run 'deadbeef'"):
        redraw("deadbeef", f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "x")


def test_diverged_run_draws_what_it_has(tmp_path):
    overrides = ["optimizer=gd", "init=explode", "plots.resolution=40", "plots.dpi=40"]
    result = execute(tmp_path, overrides)
    assert result.trajectory.diverged and result.trajectory.iterations == 0
    figures = {f.path for f in client(tmp_path).list_artifacts(result.run_id, "figures")}
    # one point: the path (its start) and the loss curve are drawn, the steps are not
    assert {"figures/trajectory.png", "figures/training_curves.png"} <= figures
    assert "figures/steps.png" not in figures
    assert np.all(np.isfinite(list(result.summary.values())))
    assert result.summary["diverged_at"] == 1 and "test_output" not in result.summary
