"""Multirun sweeps: one parent MLflow run, its children, the summary, launchers, failures."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import mlflow
import numpy as np
import pytest
from conftest import INITS, SERIES, cli_command, cli_environment, new_store, run_cli
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def store(tmp_path):
    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/outputs/mlflow.db")


def runs_by_experiment(client):
    return {e.name: client.search_runs([e.experiment_id]) for e in client.search_experiments()}


def parent_and_children(runs):
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def read_csv(client, run_id, path, tmp_path):
    with open(client.download_artifacts(run_id, path, str(tmp_path)), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def logged_steps(points: int, most: int | None) -> list[int]:
    """The steps a sweep child logs of a series of ``points`` values (step_metrics)."""
    if most is None or points <= most:
        return list(range(points))
    stride = -(-(points - 1) // (most - 1))
    return sorted({*range(0, points, stride), points - 1})


def check_compare_starts(tmp_path, proc, iterations, most=101):
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = store(tmp_path)
    by_exp = runs_by_experiment(client)
    assert by_exp.get("Default", []) == []  # nothing landed in the wrong experiment
    runs = by_exp["compare_starts"]
    assert len(runs) == 15
    parent, children = parent_and_children(runs)
    assert parent.info.status == "FINISHED"
    assert re.fullmatch(r"compare_starts #1( .+)?", parent.info.run_name)  # + other overrides
    assert parent.info.run_id in proc.stdout
    assert len(children) == 14 and all(c.info.status == "FINISHED" for c in children)
    pairs = {(c.data.params["init.name"], c.data.params["optimizer.name"]) for c in children}
    assert pairs == {(i, o) for i in INITS for o in ("rprop", "gd")}
    for child in children:  # nothing lost: the loss and weights' histories, to the end
        m = child.data.metrics
        n = int(m["iterations"])
        assert n == iterations or m["diverged"] == 1
        for key in SERIES:  # step_metrics.sweep_job: the loss and the weights, thinned
            steps = sorted(h.step for h in client.get_metric_history(child.info.run_id, key))
            wanted = logged_steps(n + 1, most) if key in ("loss", "wx", "wrec") else []
            assert steps == wanted, (key, steps)
        if m["diverged"] == 0:  # the history ends at the final point
            assert m["loss"] == m["final_loss"]
        else:  # bounded: a diverged run is named so, and its loss stayed near its start
            assert child.info.run_name.endswith(" (diverged)") and "final_loss" not in m
            losses = [x.value for x in client.get_metric_history(child.info.run_id, "loss")]
            assert max(losses) <= 1e6 * losses[0]
        assert child.data.tags["mlflow.source.name"].startswith("rnnlab init=")
        assert "results/trajectory.csv" in [
            f.path for f in client.list_artifacts(child.info.run_id, "results")
        ]
    rows = read_csv(client, parent.info.run_id, "summary/summary.csv", tmp_path)
    assert len(rows) == 14
    by_pair = {(r["init"], r["optimizer"]): r for r in rows}
    assert by_pair[("explode", "gd")]["training"] == "diverged"
    assert by_pair[("lab_start", "rprop")]["status"] == "FINISHED"
    lab = next(c for c in children if c.info.run_id == by_pair[("lab_start", "rprop")]["run_id"])
    assert float(by_pair[("lab_start", "rprop")]["final_loss"]) == lab.data.metrics["final_loss"]
    table = json.load(
        open(
            client.download_artifacts(parent.info.run_id, "summary/summary.json", str(tmp_path)),
            encoding="utf-8",
        )
    )
    assert len(table["data"]) == 14 and "final_loss" in table["columns"]
    figures = {f.path for f in client.list_artifacts(parent.info.run_id, "figures")}
    assert figures == {
        "figures/sweep_trajectories.png",
        "figures/sweep_loss_curves.png",
        "figures/valley_matrix.png",  # optimisers x starts: who reaches the valley, how fast
    }
    pm = parent.data.metrics
    assert pm["jobs"] == 14 and pm["jobs_failed"] == 0 and pm["jobs_diverged"] == 3

    # the parent reads at a glance: shared config and what was swept as params, the best
    # run named, outcomes in its description, no tag per job
    pp, pt = parent.data.params, parent.data.tags
    assert pp["sweep.init"] == ", ".join(INITS) and pp["sweep.optimizer"] == "rprop, gd"
    assert pp["data.seed"] == "61185" and pp["iterations"] == str(iterations)
    assert not any(k.startswith(("init.", "optimizer.")) for k in pp)
    assert not any(k.startswith("rnnlab.job.") for k in pt)
    finished = [c for c in children if c.data.metrics["diverged"] == 0]
    best = min(finished, key=lambda c: c.data.metrics["final_loss"])
    assert pt["best_run_id"] == best.info.run_id and pt["best_run_name"] == best.info.run_name
    assert pm["best_final_loss"] == best.data.metrics["final_loss"]
    note = pt["mlflow.note.content"]
    assert "14 jobs, 11 finished, 3 diverged, 0 failed" in note
    assert best.info.run_name in note and "gd-explode (diverged)" in note
    # the best run's model, on the parent
    mlflow.set_tracking_uri(client.tracking_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{parent.info.run_id}/model")
    wx, wrec = best.data.metrics["final_wx"], best.data.metrics["final_wrec"]
    np.testing.assert_allclose(model.predict(np.array([[1.0, 1.0]])), [wx * wrec + wx])

    # the console: a header, one line per job, the table and the verdict; stderr empty
    out = proc.stdout.splitlines()
    job_lines = [ln for ln in out if ln.startswith("[job ")]
    assert len(job_lines) == 14 and "experiment=compare_starts" not in job_lines[0]
    assert out[0].startswith(f"Sweep {parent.info.run_name}: 14 jobs; MLflow parent run")
    assert "14 jobs, 11 finished, 3 diverged, 0 failed" in proc.stdout
    assert "explode_oscillate" in proc.stdout
    assert len(out) == 1 + 14 + 15 + 2 + 3, proc.stdout  # + the sweep's three UI links
    assert proc.stderr == "", proc.stderr[-2000:]
    return parent, children


def test_compare_starts_basic_launcher(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(
        [
            "-m",
            "experiment=compare_starts",
            "iterations=60",
            "plots.resolution=80",
            "step_metrics.sweep_job_points=11",  # every 6th point of 61, and the last
        ],
        cwd=tmp_path,
    )
    _, children = check_compare_starts(tmp_path, proc, 60, most=11)
    lab = next(c for c in children if c.info.run_name.startswith("#0 "))
    assert len(lab.data.params) > 0 and lab.data.metrics["iterations"] == 60
    steps = [h.step for h in store(tmp_path).get_metric_history(lab.info.run_id, "loss")]
    assert steps == list(range(0, 61, 6))  # 0, 6, ..., 60: 11 points


def test_compare_starts_joblib_on_a_fresh_store_loses_nothing(tmp_path):
    assert not (tmp_path / "outputs").exists()
    proc = run_cli(
        [
            "-m",
            "experiment=compare_starts",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "iterations=60",
            "plots.resolution=80",
        ],
        cwd=tmp_path,
    )
    parent, children = check_compare_starts(tmp_path, proc, 60)
    # the jobs really ran in joblib's worker processes (how many of the two took jobs is
    # up to the scheduler), not in the process that recorded the parent
    pids = {c.data.tags["rnnlab.pid"] for c in children}
    assert 1 <= len(pids) <= 2 and parent.data.tags["rnnlab.pid"] not in pids


def test_a_failing_job_does_not_stop_the_others_and_the_parent_ends_failed(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(
        ["-m", "init=steady,explode", "optimizer.eta_minus=0.5,1.5", "iterations=20", "plots=none"],
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "rnnlab: 2 of 4 jobs failed" in proc.stderr.strip().splitlines()[-1]
    client = store(tmp_path)
    parent, children = parent_and_children(runs_by_experiment(client)["rnnlab"])
    assert parent.info.status == "FAILED"
    # the bad jobs are recorded too: FAILED children that say why
    assert len(children) == 4
    failed = [c for c in children if c.info.status == "FAILED"]
    assert len(failed) == 2 and {c.data.params["optimizer.eta_minus"] for c in failed} == {"1.5"}
    assert all("(0, 1)" in c.data.tags["error"] for c in failed)
    rows = read_csv(client, parent.info.run_id, "summary/summary.csv", tmp_path)
    assert len(rows) == 4 and list(rows[0])[:3] == ["job", "init", "optimizer.eta_minus"]
    bad = [r for r in rows if r["status"] != "FINISHED"]
    assert len(bad) == 2 and all(r["optimizer.eta_minus"] == "1.5" for r in bad)
    assert all("ConfigError" in r["error"] and "(0, 1)" in r["error"] for r in bad)
    assert parent.data.tags["failed_jobs"] == ", ".join(r["job"] for r in bad)
    assert "Failed: " in parent.data.tags["mlflow.note.content"]


def test_a_job_failing_inside_its_run_marks_child_and_parent_failed(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(["-m", "gradcheck.rtol=1e-5,1e-15", "iterations=20", "plots=none"], cwd=tmp_path)
    assert proc.returncode == 1
    client = store(tmp_path)
    parent, children = parent_and_children(runs_by_experiment(client)["rnnlab"])
    assert parent.info.status == "FAILED"
    statuses = sorted(c.info.status for c in children)
    assert statuses == ["FAILED", "FINISHED"]
    assert "GradientCheckFailed" in proc.stdout  # the failed job is named in the summary
    # an ad-hoc sweep's table shows the swept key as a column
    assert "gradcheck.rtol" in proc.stdout.splitlines()[3]


def test_gd_learning_rates_names_the_best_rate(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(
        [
            "-m",
            "experiment=gd_learning_rates",
            "init=steady,vanish",
            "optimizer.learning_rate=1e-7,1e-5,1e-3",
            "plots.sweep_figures=false",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = store(tmp_path)
    parent, children = parent_and_children(runs_by_experiment(client)["gd_learning_rates"])
    assert len(children) == 6
    # the best rate has the lowest median final loss over the starts; 1e-3 diverges
    finals = {}
    for c in children:
        rate = float(c.data.params["optimizer.learning_rate"])
        bad = c.data.metrics["diverged"] == 1
        finals.setdefault(rate, []).append(float("inf") if bad else c.data.metrics["final_loss"])
    assert parent.data.params["sweep.optimizer.learning_rate"] == "1e-07, 1e-05, 0.001"
    assert all(v == float("inf") for v in finals[1e-3])
    best = min(finals, key=lambda r: np.median(finals[r]))
    assert parent.data.tags["best_learning_rate"] == f"{best:g}" == "1e-05"
    assert parent.data.metrics["best_learning_rate"] == best
    assert f"Best learning rate: {best:g}" in proc.stdout
    assert "gd_learning_rate=1e-05" in proc.stdout


def test_optimizer_learning_rates_names_each_optimizers_best_rate(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(
        [
            "-m",
            "experiment=optimizer_learning_rates",
            "init=steady,vanish",
            "optimizer=gd,adam",
            "optimizer.learning_rate=1e-5,1e-2",
            "iterations=100",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = store(tmp_path)
    parent, children = parent_and_children(runs_by_experiment(client)["optimizer_learning_rates"])
    assert len(children) == 8
    finals: dict[str, dict[float, list[float]]] = {}
    for c in children:
        rate = float(c.data.params["optimizer.learning_rate"])
        loss = float("inf") if c.data.metrics["diverged"] else c.data.metrics["final_loss"]
        finals.setdefault(c.data.tags["optimizer"], {}).setdefault(rate, []).append(loss)
    best = {o: min(r, key=lambda rate: np.median(r[rate])) for o, r in finals.items()}
    assert best == {"gd": 1e-5, "adam": 1e-2}  # 1e-2 blows gradient descent up
    for name, rate in best.items():
        assert parent.data.tags[f"best_learning_rate.{name}"] == f"{rate:g}"
        assert parent.data.metrics[f"best_learning_rate_{name}"] == rate
    assert (
        "uv run rnnlab -m experiment=compare_optimizers gd_learning_rate=1e-05 "
        "adam_learning_rate=0.01"
    ) in proc.stdout


def test_compare_optimizers_shows_who_reaches_the_valley_from_where(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(["-m", "experiment=compare_optimizers", "iterations=80"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "49 jobs, " in proc.stdout and "valley_at" in proc.stdout
    client = store(tmp_path)
    parent, children = parent_and_children(runs_by_experiment(client)["compare_optimizers"])
    assert len(children) == 49 and parent.info.status == "FINISHED"
    optimizers = {c.data.tags["optimizer"] for c in children}
    assert optimizers == {
        "rprop", "irprop_minus", "irprop_plus", "gd", "gd_clip", "momentum", "adam"
    }  # fmt: skip
    # valley_at is the first point below valley_loss, where there is one
    for c in children:
        loss = [m.value for m in client.get_metric_history(c.info.run_id, "loss")]
        below = [k for k, v in enumerate(loss) if v < 0.2]
        if c.data.metrics["diverged"] or not below:
            assert "valley_at" not in c.data.metrics
        else:
            assert c.data.metrics["valley_at"] == below[0]
    figures = {f.path for f in client.list_artifacts(parent.info.run_id, "figures")}
    assert "figures/valley_matrix.png" in figures
    with open(
        client.download_artifacts(parent.info.run_id, "summary/summary.csv", str(tmp_path)),
        encoding="utf-8",
    ) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 49 and {"optimizer", "init", "valley_at"} <= set(rows[0])


def test_two_multiruns_in_the_same_second_write_to_different_folders(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    args = ["-m", "init=steady,vanish", "iterations=10", "plots=none"]
    procs = [
        subprocess.Popen(
            cli_command(args),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_environment(),
            encoding="utf-8",
        )
        for _ in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, out + err
    runs = runs_by_experiment(store(tmp_path))["rnnlab"]
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    dirs = {p.data.tags["sweep_dir"] for p in parents}
    assert len(dirs) == 2
    assert len(runs) == 6


def test_ray_launcher_runs_the_sweep_on_a_local_ray_instance(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(
        [
            "-m",
            "experiment=compare_starts",
            "hydra/launcher=ray",
            "init=steady,explode",
            "iterations=30",
            "plots.sweep_figures=false",
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = store(tmp_path)
    parent, children = parent_and_children(runs_by_experiment(client)["compare_starts"])
    assert parent.info.status == "FINISHED" and len(children) == 4, proc.stdout[-3000:]
    assert "_run_job pid=" in proc.stdout + proc.stderr  # jobs ran in Ray workers


def test_a_sweeps_loss_curves_are_drawn_at_the_iterations_logged(tmp_path):
    """Issue 31, 1, through a real sweep: the figure's x values are the store's steps, and
    the first point in the valley on the figure is where the run's valley_at says."""
    from rnnlab import plots
    from rnnlab.sweeps import collect

    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(["-m", "init=vanish", "optimizer=gd,rprop", "iterations=500", "plots=none"],
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    (p,) = [r for r in client.search_runs(["1"]) if r.data.tags.get("sweep") == "true"]
    summary = collect.collect(client, "1", p.info.run_id, None)
    for row in summary.rows:
        steps, loss = summary.losses[row["run_id"]]
        fig = plots.sweep_loss_curves({"p": [("c", steps, loss, False)]})
        x = fig.axes[0].lines[0].get_xdata()
        logged = [m.step for m in client.get_metric_history(row["run_id"], "loss")]
        assert list(x) == sorted(logged) and x[-1] == 500 and len(x) <= 102
        valley_at = client.get_run(row["run_id"]).data.metrics["valley_at"]
        first = x[np.flatnonzero(loss < 0.2)[0]]  # the first logged point in the valley
        assert valley_at <= first < valley_at + 50, (valley_at, first)  # not 5x too early


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal (pty) is POSIX's")
def test_a_sweep_longer_than_the_terminal_shows_one_live_line_then_the_table(tmp_path):
    """Issue 31, 7: on a terminal, a sweep of more jobs than it has lines shows one live
    progress line (done/total, diverged, failed, time left) and the table at the end;
    piped, every job's line stays."""
    import os
    import pty

    new_store(tmp_path / "outputs" / "mlflow.db")
    args = ["-m", "init.wx=range(-1,1,0.5)", "init.wrec=0.5,1", "iterations=3", "plots=none"]
    env = {**cli_environment(), "LINES": "6", "COLUMNS": "200"}
    main, terminal = pty.openpty()
    proc = subprocess.Popen(
        cli_command(args), cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=terminal, stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal's other end closed: the command has ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=300) == 0
    os.close(main)
    out = b"".join(chunks).decode("utf-8")
    assert "[job " not in out  # no job's own line
    updates = re.findall(r"\r\x1b\[K\[(\d+)/8\] (\d+) diverged, (\d+) failed, ~(\d+) s left", out)
    assert [int(done) for done, _, _, _ in updates] == list(range(1, 9))
    assert all((d, f) == ("0", "0") for _, d, f, _ in updates)
    # the time left counts from the sweep's start: after the first job, more than 0 s
    assert int(updates[0][3]) > 0 and updates[-1][3] == "0"
    assert re.search(r"\r\x1b\[Kjob +init\.wx +init\.wrec +status", out)  # the table, line gone
    assert "8 jobs, 8 finished, 0 diverged, 0 failed" in out
    assert out.splitlines()[0].startswith("Sweep ") and "8 jobs = init.wx 4 (-1 ... 0.5)" in out
    # piped: every job's line, no live line
    piped = run_cli(args, tmp_path, env=env)
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert len(re.findall(r"^\[job \d\] ", piped.stdout, re.M)) == 8
    assert "\x1b[K" not in piped.stdout
