"""End to end: the ``rnnlab`` command in a subprocess, its store opened with MLflow."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import signal
import subprocess
import time

import numpy as np
import pytest
from conftest import SERIES, assert_close, cli_command, cli_environment, new_store, run_cli
from mlflow.tracking import MlflowClient

from rnnlab.store.client import client_for

pytestmark = pytest.mark.slow

SUMMARY = [
    "final_loss",
    "final_wx",
    "final_wrec",
    "test_output",
    "test_error",
    "gradcheck_rel_error_wx",
    "gradcheck_rel_error_wrec",
    "iterations",
    "diverged",
]
# The params of a training run: the keys that decide its result (issue 9), no more.
RUN_PARAMS = {
    "data.recipe",
    "data.n_samples",
    "data.seq_len",
    "data.seed",
    "data.test_sequence",
    "init.name",
    "init.wx",
    "init.wrec",
    "optimizer.name",
    "optimizer.initial_step",
    "optimizer.eta_plus",
    "optimizer.eta_minus",
    "optimizer.step_min",
    "optimizer.step_max",
    "iterations",
    "tolerance",
    "divergence.loss_factor",
    "valley_loss",
}


def store(tmp_path):
    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/outputs/mlflow.db")


def all_runs(client):
    exps = client.search_experiments()
    return client.search_runs([e.experiment_id for e in exps]) if exps else []


def artifact_paths(client, run_id, path=None):
    out = []
    for f in client.list_artifacts(run_id, path):
        out += artifact_paths(client, run_id, f.path) if f.is_dir else [f.path]
    return out


def test_default_run_reproduces_lab8_in_one_mlflow_run(tmp_path, golden):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli([], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # the console: the lab's lines and where the run is, nothing else (no MLflow chatter)
    lines = proc.stdout.splitlines()
    assert len(lines) == 7, proc.stdout
    assert lines[5].startswith("In the MLflow UI: http://127.0.0.1:5000/#/experiments/")
    assert lines[6].endswith("runs?viewStateShareKey=rnnlab-results&workflowType=machine_learning")
    assert lines[0].startswith("Gradient check at (1.2, 1.2): No gradient errors found")
    assert lines[1] == "Final weights are: wx = 1.6779, wrec = 0.9398"
    assert lines[2] == "Output from model: 12.0768; expected output (sum of input): 11.9200"
    assert lines[3] == "Final loss 0.111257 after 500 iterations (completed)."
    assert lines[4].startswith("MLflow run ") and "outputs/mlflow.db" in lines[4]
    assert proc.stderr == ""

    client = store(tmp_path)
    runs = all_runs(client)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_id in proc.stdout
    assert run.info.run_name == "rprop-lab_start"
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "rnnlab"
    assert exp.artifact_location.startswith(f"file://{tmp_path}/outputs/")
    assert "lab 8" in exp.tags["mlflow.note.content"]  # the experiment's description
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"

    p = run.data.params
    assert set(p) == RUN_PARAMS  # no tracking.*, plots.*, basin.*, and no wx/wrec from the model
    assert p["optimizer.eta_minus"] == "0.5" and p["init.wx"] == "-1.5"
    assert p["data.seed"] == "61185" and p["iterations"] == "500"
    assert p["divergence.loss_factor"] == "1000000.0"
    assert p["data.test_sequence"].startswith("0.66 0.33 0.33 0.66 1.0 ")  # a short string
    t = run.data.tags
    assert (t["optimizer"], t["init"], t["data_recipe"]) == ("rprop", "lab_start", "lab8")
    assert len(t["git_commit"]) in (40, 7) or t["git_commit"] == "unknown"
    # MLflow's standard columns (Source, Created by) and the run's description
    assert t["mlflow.source.name"] == "rnnlab" and t["mlflow.source.type"] == "LOCAL"
    assert t["mlflow.user"] and t["mlflow.source.git.commit"] == t["git_commit"]
    assert t["mlflow.note.content"] == (
        "RProp from lab_start (-1.5, 2): 500 iterations, final loss 0.111, completed"
    )

    # the history ends where the run ends: points 0..500, updates 0..499
    for key in SERIES:
        history = client.get_metric_history(run.info.run_id, key)
        n = 500 if key.startswith("step_") else 501
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(n)), key
    loss = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "loss")}
    for k, value in golden["rprop"]["loss_at_iteration"].items():
        assert_close(loss[int(k)], value, 1e-12)
    m = run.data.metrics
    assert m["loss"] == m["final_loss"] == loss[500]  # the latest loss is the final loss
    assert (m["wx"], m["wrec"]) == (m["final_wx"], m["final_wrec"])

    assert set(SUMMARY) <= set(m)
    assert_close(m["final_wx"], golden["rprop"]["final"]["wx"], 1e-12)
    assert_close(m["final_wrec"], golden["rprop"]["final"]["wrec"], 1e-12)
    assert_close(m["final_loss"], golden["rprop"]["final_loss"], 1e-12)
    assert_close(m["test_output"], golden["test"]["model_output"], 1e-12)
    assert_close(
        m["test_error"], golden["test"]["model_output"] - golden["test"]["expected_sum"], 1e-9
    )
    assert m["iterations"] == 500 and m["diverged"] == 0
    assert m["gradcheck_rel_error_wx"] < 1e-8 and m["gradcheck_rel_error_wrec"] < 1e-8

    paths = artifact_paths(client, run.info.run_id)
    for expected in [
        "config/config.yaml",
        "config/overrides.yaml",
        "results/trajectory.csv",
        "data/dataset.csv",
        "results/gradient_over_time.json",
        "results/gradcheck.json",
        "figures/loss_surface.png",
        "figures/gradient_over_time.png",
        "figures/trajectory.png",
    ]:
        assert expected in paths

    local = client.download_artifacts(run.info.run_id, "results/trajectory.csv", str(tmp_path))
    rows = list(csv.DictReader(io.StringIO(open(local, encoding="utf-8").read())))
    assert len(rows) == 501 and list(rows[0]) == ["iteration", *SERIES]
    assert float(rows[499]["loss"]) == golden["rprop"]["loss_at_iteration"]["499"]
    assert float(rows[500]["loss"]) == m["final_loss"] and rows[500]["step_wx"] == "nan"

    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.digest
    with open(
        client.download_artifacts(run.info.run_id, "data/dataset.csv", str(tmp_path)),
        encoding="utf-8",
    ) as f:
        data = np.loadtxt(f, delimiter=",", skiprows=1, encoding="utf-8")
    np.testing.assert_array_equal(data[:, :-1], np.array(golden["data"]["X"]))


def test_gd_from_explode_oscillate_stops_at_the_loss_bound_named_diverged(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(["optimizer=gd", "init=explode_oscillate", "plots=none"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # one story: where it diverged, no final loss (the console, the description, metrics)
    assert "Training diverged at iteration 1: no final loss" in proc.stdout
    assert "Final loss" not in proc.stdout and proc.stderr == ""
    client = store(tmp_path)
    (run,) = all_runs(client)
    # Finished (it ran as asked), told apart from a good run by its name and description
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "gd-explode_oscillate (diverged)"
    assert "diverged at iteration 1: no final loss" in run.data.tags["mlflow.note.content"]
    m = run.data.metrics
    assert m["diverged"] == 1 and m["diverged_at"] == 1 and run.data.tags["status"] == "diverged"
    # no final loss, weights or test output: nothing to scale a comparison to a blow-up
    assert not {"final_loss", "final_wx", "final_wrec", "test_output", "test_error"} & set(m)
    n = int(m["iterations"])
    assert n == 0
    losses = [x.value for x in client.get_metric_history(run.info.run_id, "loss")]
    assert len(losses) == n + 1 and max(losses) <= 1e6 * losses[0] < 1e17  # bounded
    for key in SERIES:
        values = [x.value for x in client.get_metric_history(run.info.run_id, key)]
        assert all(math.isfinite(v) for v in values), key
    assert all(math.isfinite(v) for v in m.values())
    assert "RuntimeWarning" not in proc.stderr and "overflow" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["optimizer.eta_minus=1.5"], "optimizer.eta_minus=1.5 is not allowed: a number in (0, 1)"),
        (["data.seq_len=0"], "data.seq_len=0 is not allowed: an integer in [1, 1000]"),
        (["init.wx=abc"], "init.wx=abc"),
        (["optimizer=nadam"], "optimizer=nadam is not an option of group 'optimizer'"),
    ],
)
def test_bad_input_one_line_nonzero_exit_no_run(tmp_path, args, expected):
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0] and lines[0].startswith("rnnlab: error: ")
    assert "Traceback" not in proc.stderr
    db = tmp_path / "outputs" / "mlflow.db"
    assert not db.exists() or all_runs(store(tmp_path)) == []


def test_help_lists_groups_and_cfg_prints_config(tmp_path):
    proc = run_cli(["--help"], cwd=tmp_path)
    assert proc.returncode == 0
    assert "optimizer: adam, gd, gd_clip, irprop_minus, irprop_plus, momentum, rprop" in proc.stdout
    assert "init: explode, explode_oscillate, lab_start" in proc.stdout
    proc = run_cli(["--cfg", "job", "optimizer=gd"], cwd=tmp_path)
    assert proc.returncode == 0
    assert "learning_rate: 1.0e-05" in proc.stdout


def test_verbose_flag_brings_back_the_libraries_log_lines(tmp_path):
    proc = run_cli(["-v", "plots=none", "iterations=5", "tracking.log_model=false"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "INFO mlflow.store.db.utils: Creating initial MLflow database tables" in proc.stderr
    quiet = run_cli(["plots=none", "iterations=5", "tracking.log_model=false"], cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert len(quiet.stdout.splitlines()) == 7  # the lab's lines, the run, its two links


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_ends_killed_not_running(tmp_path, sig):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = subprocess.Popen(
        cli_command(["iterations=100000", "plots=none"]),  # the maximum: ~20 s
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environment(),
        encoding="utf-8",
    )
    try:
        deadline = time.monotonic() + 120
        runs = []
        while time.monotonic() < deadline and not runs:
            time.sleep(0.5)
            if (tmp_path / "outputs" / "mlflow.db").exists():
                with contextlib.suppress(Exception):
                    # through rnnlab's lock: opening the store while the job still runs
                    # its schema migrations would race them
                    runs = all_runs(client_for(f"sqlite:///{tmp_path}/outputs/mlflow.db"))
        assert runs and runs[0].info.status == "RUNNING"
        time.sleep(2.0)  # well inside training
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    (run,) = all_runs(store(tmp_path))
    assert run.info.status == "KILLED"


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["iterations=20", "plots=none"],
        ["experiment=basin_map", "basin.resolution=12", "iterations=30", "plots=none"],
        ["-m", "init=steady,vanish", "iterations=10", "plots=none"],
    ],
    ids=["run", "basin_map", "sweep"],
)
def test_the_process_the_user_started_records_every_run(tmp_path, args):
    # the rnnlab command's two processes: its worker composes and computes, the process
    # the user started (the recorder) opens and ends the runs (run, basin map, sweep)
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = subprocess.Popen(
        cli_command(args), cwd=tmp_path, env=cli_environment(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, encoding="utf-8",
    )  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids)
    assert (
        len(runs)
        == {"run": 1, "basin_map": 1, "sweep": 3}[
            "sweep" if "-m" in args else "basin_map" if "experiment=basin_map" in args else "run"
        ]
    )
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["rnnlab.pid"] == str(proc.pid), run.info.run_name
    if "experiment=basin_map" in args:  # the recorder says the metrics
        (run,) = runs
        assert f"run_id: {run.info.run_id}" in out
        converged = run.data.metrics["rprop_fraction_converged"]
        assert f"rprop_fraction_converged: {converged:.4g}" in out
