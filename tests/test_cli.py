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
from conftest import SERIES, assert_close, cli_command, cli_environment, run_cli
from mlflow.tracking import MlflowClient

from rnnlab.tracking import client_for

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
    proc = run_cli([], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Final weights are: wx = 1.6779, wrec = 0.9398" in proc.stdout
    assert "No gradient errors found" in proc.stdout
    assert "12.0768" in proc.stdout and "11.9200" in proc.stdout

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

    p = run.data.params
    assert p["optimizer.eta_minus"] == "0.5" and p["init.wx"] == "-1.5"
    assert p["data.seed"] == "61185" and p["iterations"] == "500"
    assert p["tracking.experiment"] == "rnnlab"
    t = run.data.tags
    assert (t["optimizer"], t["init"], t["data_recipe"]) == ("rprop", "lab_start", "lab8")
    assert len(t["git_commit"]) in (40, 7) or t["git_commit"] == "unknown"

    for key in SERIES:
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(500)), key
    loss = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "loss")}
    for k, value in golden["rprop"]["loss_at_iteration"].items():
        assert_close(loss[int(k)], value, 1e-12)

    m = run.data.metrics
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
    rows = list(csv.DictReader(io.StringIO(open(local).read())))
    assert len(rows) == 500 and list(rows[0]) == ["iteration", *SERIES]
    assert float(rows[499]["loss"]) == golden["rprop"]["loss_at_iteration"]["499"]

    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.digest
    with open(client.download_artifacts(run.info.run_id, "data/dataset.csv", str(tmp_path))) as f:
        data = np.loadtxt(f, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(data[:, :-1], np.array(golden["data"]["X"]))


def test_gd_from_explode_finishes_marked_diverged(tmp_path):
    proc = run_cli(["optimizer=gd", "init=explode", "plots=none"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "diverged" in proc.stdout
    client = store(tmp_path)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED" and run.info.run_name == "gd-explode"
    assert run.data.metrics["diverged"] == 1 and run.data.tags["status"] == "diverged"
    n = int(run.data.metrics["iterations"])
    assert 0 < n < 500
    for key in SERIES:
        values = [m.value for m in client.get_metric_history(run.info.run_id, key)]
        assert len(values) == n and all(math.isfinite(v) for v in values), key
    assert all(math.isfinite(v) for v in run.data.metrics.values())
    assert "RuntimeWarning" not in proc.stderr and "overflow" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["optimizer.eta_minus=1.5"], "optimizer.eta_minus=1.5 is not allowed: a number in (0, 1)"),
        (["data.seq_len=0"], "data.seq_len=0 is not allowed: an integer >= 1"),
        (["init.wx=abc"], "init.wx=abc"),
        (["optimizer=adam"], "optimizer=adam is not an option of group 'optimizer'"),
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
    assert "optimizer: gd, rprop" in proc.stdout
    assert "init: explode, explode_oscillate, lab_start" in proc.stdout
    proc = run_cli(["--cfg", "job", "optimizer=gd"], cwd=tmp_path)
    assert proc.returncode == 0
    assert "learning_rate: 1.0e-05" in proc.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_ends_killed_not_running(tmp_path, sig):
    proc = subprocess.Popen(
        cli_command(["iterations=10000000", "plots=none"]),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environment(),
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
