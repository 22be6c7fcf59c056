"""Issue 20: what rnnlab decides of the MLflow UI. Sweeps and runs read apart by name,
the printed links open the training view on the right pages, every experiment carries
the saved view "rnnlab: results", and a diverged run tells one story."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import urllib.parse

import pytest
from conftest import MlflowServer, cli_command, cli_environment, new_store, run_cli
from mlflow.tracking import MlflowClient

from rnnlab.store import ui

SMALL = ["iterations=5", "plots=none"]


def store(tmp_path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/outputs/mlflow.db")


def sweeps(client, experiment="compare_starts"):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if r.data.tags.get("sweep") == "true"], runs


def links(stdout: str) -> list[str]:
    return re.findall(r"https?://\S+/#/\S+", stdout)  # the UI links


def view_state(client, experiment_id: str) -> dict:
    envelope = json.loads(client.get_experiment(experiment_id).tags[ui.VIEW_TAG])
    assert envelope["name"] == "rnnlab: results" and isinstance(envelope["createdAt"], int)
    return json.loads(envelope["state"])


def test_base_url_is_the_server_without_its_password_or_mlflow_ui_default():
    assert ui.base_url("http://u:secret@10.0.0.5:5000/mlflow/") == "http://10.0.0.5:5000/mlflow"
    assert ui.base_url("https://host") == "https://host"
    assert ui.base_url("sqlite:///outputs/mlflow.db") == "http://127.0.0.1:5000"
    assert ui.base_url("postgresql://u:p@db/mlflow", "http://ui:8080/") == "http://ui:8080"


def test_compare_link_lists_every_run_and_stops_past_the_limit():
    ids = [f"{i:032x}" for i in range(3)]
    link = ui.compare_link("http://h", "7", ids)
    query = urllib.parse.parse_qs(link.split("#/compare-runs?", 1)[1])
    assert json.loads(query["runs"][0]) == ids and json.loads(query["experiments"][0]) == ["7"]
    assert query["workflowType"] == ["machine_learning"]
    assert ui.compare_link("http://h", "7", ids * 40) is None  # 120 runs: no link
    # ... and the sweep's lines say so, and how to compare them instead
    _, note, view = ui.sweep_lines("http://h", "7", "p" * 32, ids * 40)
    assert note.startswith("  its 120 runs: no compare link past 100") and "tags.in_sweep" in note
    assert view.startswith("  every run of the experiment, results as columns: http://h/#/")


@pytest.mark.slow
def test_a_single_run_prints_its_links_and_keeps_the_results_view(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(SMALL, tmp_path)
    assert proc.returncode == 0, proc.stderr
    client = store(tmp_path)
    (run,) = client.search_runs([client.get_experiment_by_name("rnnlab").experiment_id])
    exp, rid = run.info.experiment_id, run.info.run_id
    assert links(proc.stdout) == [
        f"http://127.0.0.1:5000/#/experiments/{exp}/runs/{rid}?workflowType=machine_learning",
        f"http://127.0.0.1:5000/#/experiments/{exp}/runs?viewStateShareKey=rnnlab-results"
        "&workflowType=machine_learning",
    ]
    state = view_state(client, exp)
    assert state["runsHiddenMode"] == "SHOW_ALL"  # charts draw every run, not the first 10
    (loss,) = state["compareRunCharts"]  # the loss on a log axis; MLflow adds the others
    assert (loss["type"], loss["metricKey"], loss["scaleType"]) == ("LINE", "loss", "log")
    assert [s["name"] for s in state["compareRunSections"]][-2:] == [
        "Model metrics",
        "System metrics",
    ]
    # a wide name column: the UI sizes only the columns its columnOrder names
    assert state["columnOrder"] == ["attributes.`Run Name`"]
    assert state["columnWidths"] == {"attributes.`Run Name`": ui.RUN_NAME_WIDTH}
    assert state["selectedColumns"][:3] == [
        "params.`init.name`",
        "params.`optimizer.name`",
        "metrics.`final_loss`",
    ]
    # every column it names is one a run of the experiment has
    keys = {f"params.`{k}`" for k in run.data.params} | {f"metrics.`{k}`" for k in run.data.metrics}
    assert {"metrics.`final_loss`", "metrics.`diverged`"} <= keys
    # a second run leaves the one view as it is (no tag per run)
    before = client.get_experiment(exp).tags[ui.VIEW_TAG]
    assert run_cli([*SMALL, "init=steady"], tmp_path).returncode == 0
    assert client.get_experiment(exp).tags[ui.VIEW_TAG] == before


@pytest.mark.slow
def test_repeated_sweeps_have_unique_names_and_their_children_read_apart(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    commands = [
        ["-m", "experiment=compare_starts", *SMALL],
        ["-m", "experiment=compare_starts", *SMALL],
        ["-m", "experiment=compare_starts", *SMALL, "gd_learning_rate=1e-06"],
    ]
    outs = []
    for args in commands:
        proc = run_cli(args, tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(proc.stdout)
    # and two at once: numbered by start time, still apart
    env = cli_environment()
    both = [
        subprocess.Popen(
            cli_command(["-m", "experiment=compare_starts", *SMALL]),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        for _ in range(2)
    ]
    for p in both:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    client = store(tmp_path)
    first = next(p for p in sweeps(client)[0] if p.info.run_name.startswith("compare_starts #1"))
    # a rerun of a sweep is numbered in the same sequence and says which one it reruns
    proc = run_cli([first.info.run_id], tmp_path, script="rnnlab-rerun")
    assert proc.returncode == 0, proc.stderr[-2000:]
    parents, runs = sweeps(client)
    rerun = next(p for p in parents if p.data.tags.get("rerun_of"))
    assert rerun.info.run_name == "compare_starts #6 rerun of #1"
    parents.remove(rerun)
    names = sorted(p.info.run_name for p in parents)
    small = "iterations=5"  # what else each command chose follows the number (not plots=)
    assert names == [
        f"compare_starts #1 {small}",
        f"compare_starts #2 {small}",
        f"compare_starts #3 {small} gd_learning_rate=1e-06",
        f"compare_starts #4 {small}",
        f"compare_starts #5 {small}",
    ]
    first = outs[2].splitlines()[0]
    assert first.startswith(f"Sweep compare_starts #3 {small} gd_learning_rate=1e-06:")
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(children) == 14
        heads = [c.info.run_name[:16] for c in children]
        assert len(set(heads)) == 14, heads  # apart within the first 16 characters
        for c in children:
            num = c.data.tags["sweep_job"]
            assert c.info.run_name.startswith(f"#{num} {c.data.params['optimizer.name']}-")
            # the swept values as params that sort first: the compare view's axes
            assert c.data.params["choice.init"] == c.data.params["init.name"]
            assert c.data.params["choice.optimizer"] == c.data.params["optimizer.name"]
            diverged = c.data.metrics["diverged"] == 1
            assert c.info.run_name.endswith(" (diverged)") == diverged


@pytest.mark.slow
def test_a_sweep_prints_its_parent_its_children_compared_and_the_view(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    args = ["-m", "init=steady,vanish", "optimizer.eta_plus=1.1,1.2", *SMALL]
    proc = run_cli(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    client = store(tmp_path)
    (parent,), runs = sweeps(client, "rnnlab")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    exp, pid = parent.info.experiment_id, parent.info.run_id
    assert parent.info.run_name == "init x optimizer.eta_plus #1 iterations=5"  # (not plots=)
    # a swept key the optimiser-start name does not say is in each child's name
    names = sorted(c.info.run_name for c in children)
    assert names == [
        "#0 rprop-steady eta_plus=1.1",
        "#1 rprop-steady eta_plus=1.2",
        "#2 rprop-vanish eta_plus=1.1",
        "#3 rprop-vanish eta_plus=1.2",
    ]
    parent_link, compare, view = links(proc.stdout)
    assert parent_link == (
        f"http://127.0.0.1:5000/#/experiments/{exp}/runs/{pid}?workflowType=machine_learning"
    )
    query = urllib.parse.parse_qs(compare.split("?", 1)[1])
    assert sorted(json.loads(query["runs"][0])) == sorted(c.info.run_id for c in children)
    assert query["workflowType"] == ["machine_learning"]
    assert view.endswith(
        f"/#/experiments/{exp}/runs?viewStateShareKey=rnnlab-results&workflowType=machine_learning"
    )
    # the view gained the swept key's column and the sweep's metrics
    columns = view_state(client, exp)["selectedColumns"]
    assert "params.`choice.optimizer.eta_plus`" in columns
    assert "metrics.`best_final_loss`" in columns and "metrics.`jobs_diverged`" in columns
    assert all(
        c.data.params["choice.optimizer.eta_plus"] == c.data.params["optimizer.eta_plus"]
        for c in children
    )
    # which sweep a child belongs to: a column (names repeat across sweeps once sorted)
    assert "tags.`in_sweep`" in columns
    assert {c.data.tags["in_sweep"] for c in children} == {parent.info.run_name}
    # the charts: the sweep's keys in parallel coordinates against the final loss's log10
    # (a linear axis where MLflow offers no log scale)
    state = view_state(client, exp)
    (parallel,) = [c for c in state["compareRunCharts"] if c["type"] == "PARALLEL"]
    assert parallel["selectedParams"] == ["choice.init", "choice.optimizer.eta_plus"]
    assert parallel["selectedMetrics"] == ["log10_final_loss"]
    for c in children:
        loss = c.data.metrics["final_loss"]
        assert c.data.metrics["log10_final_loss"] == pytest.approx(math.log10(loss), rel=1e-12)


@pytest.mark.slow
def test_links_through_a_tracking_server_point_at_the_server(tmp_path):
    server = MlflowServer(tmp_path)
    try:
        proc = run_cli([*SMALL, f"tracking.uri={server.url}"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        run_link, view = links(proc.stdout)
        assert run_link.startswith(f"{server.url}/#/experiments/")
        assert view.startswith(f"{server.url}/#/experiments/")
        args = [*SMALL, f"tracking.uri={server.url}", "tracking.ui_url=http://ui:1/"]
        proc = run_cli(args, tmp_path)
        assert links(proc.stdout)[0].startswith("http://ui:1/#/experiments/")
    finally:
        server.stop()


RACE = """
import sys, time
from mlflow.tracking import MlflowClient
from rnnlab.config.params import SWEPT_PREFIX
from rnnlab.store import ui
uri, key, start, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
client = MlflowClient(uri)
ids = [client.get_experiment_by_name(f"e{i}").experiment_id for i in range(n)]
for i, eid in enumerate(ids):
    while time.time() < start + 0.3 * i:
        time.sleep(0.0005)
    # all processes at this moment, on one experiment: a sweep's parent, then its view
    run = client.create_run(eid, tags={ui.SWEEP_TAG: "true"})
    client.log_param(run.info.run_id, SWEPT_PREFIX + key, "1, 2")
    ui.save_results_view(client, eid)
"""


@pytest.mark.slow
def test_sweeps_starting_at_once_all_get_their_columns_in_the_view(tmp_path):
    # MLflow's set_experiment_tag reads, then inserts: two sweeps that save a new view
    # at once collided (a UNIQUE constraint, the sweep refused), or the later write lost
    # the other's columns
    import time

    db = new_store(tmp_path / "mlflow.db")
    uri, n, keys = f"sqlite:///{db}", 12, ["lr", "seed", "iterations"]
    client = MlflowClient(uri)
    for i in range(n):
        client.create_experiment(f"e{i}", artifact_location=str(tmp_path / f"a{i}"))
    start = time.time() + 6  # after the processes' imports
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, uri, key, str(start), str(n)],
            env=cli_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        for key in keys
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    for i in range(n):
        columns = view_state(client, client.get_experiment_by_name(f"e{i}").experiment_id)[
            "selectedColumns"
        ]
        for key in keys:
            assert f"params.`choice.{key}`" in columns, (i, columns)
        assert "metrics.`best_final_loss`" in columns
