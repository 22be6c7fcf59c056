"""Rerun from the store, bit for bit; the Python API; the logged model; lineage."""

from __future__ import annotations

import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import REPO, SERIES, new_store, run_cli, store_overrides
from mlflow.tracking import MlflowClient

import rnnlab
from rnnlab.cli.rerun import RerunError, rerun_run
from rnnlab.jobs.recorder import LocalRecorder
from rnnlab.store.records import RecordError

# every test here works on whole runs recorded in a store (and reruns them): end to end
pytestmark = pytest.mark.slow

SMALL = ["iterations=120", "plots.resolution=60", "plots.dpi=40"]


def histories(client, run_id):
    return {
        k: [
            (m.step, m.value)
            for m in sorted(client.get_metric_history(run_id, k), key=lambda m: m.step)
        ]
        for k in SERIES
    }


def figure_bytes(client, run_id, tmp_path):
    out = {}
    for f in client.list_artifacts(run_id, "figures"):
        local = client.download_artifacts(run_id, f.path, str(tmp_path / run_id))
        out[f.path] = open(local, "rb").read()
    return out


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def api_run(store_dir):
    """One run shared by this module's fast tests (each reads it; none changes it)."""
    return rnnlab.run([*store_overrides(store_dir), *SMALL], output_dir=store_dir / "job")


def test_api_run_load_compare(tmp_path, store_dir, api_run):
    r = api_run
    assert r.trajectory.iterations == 120 and len(r.trajectory.loss) == 121
    loaded = rnnlab.load(r.run_id, tracking_uri=f"sqlite:///{store_dir}/mlflow.db")
    assert loaded.run_id == r.run_id and loaded.experiment_id == r.experiment_id
    for a, b in [
        (loaded.trajectory.w, r.trajectory.w),
        (loaded.trajectory.loss, r.trajectory.loss),
        (loaded.trajectory.grad, r.trajectory.grad),
        (loaded.trajectory.step, r.trajectory.step),
        (loaded.trajectory.final_w, r.trajectory.final_w),
    ]:
        np.testing.assert_array_equal(a, b)
    assert loaded.summary == r.summary
    assert loaded.config["optimizer"] == r.config["optimizer"]
    assert loaded.gradcheck.backprop == r.gradcheck.backprop
    second = rnnlab.run(
        [*store_overrides(store_dir), *SMALL, "optimizer=gd", "init=steady"],
        output_dir=tmp_path / "job2",
    )
    table = rnnlab.compare(
        [r.run_id, second.run_id], tracking_uri=f"sqlite:///{store_dir}/mlflow.db"
    )
    assert list(table.index) == [r.run_id, second.run_id]
    assert list(table["optimizer.name"]) == ["rprop", "gd"]
    assert table.loc[second.run_id, "final_loss"] == second.summary["final_loss"]
    assert table.loc[r.run_id, "init.wx"] == -1.5


def test_logged_model_predicts_the_test_sum_as_test_output(store_dir, api_run, golden):
    mlflow.set_tracking_uri(f"sqlite:///{store_dir}/mlflow.db")
    model = mlflow.pyfunc.load_model(f"runs:/{api_run.run_id}/model")
    out = model.predict(np.array([golden["test"]["input"]]))
    assert out.shape == (1,) and out[0] == api_run.summary["test_output"]
    two = model.predict(np.array([[1.0, 1.0], [0.5, 0.0]]))  # any batch, any length
    wx, wrec = api_run.trajectory.final_w
    np.testing.assert_allclose(two, [wx * wrec + wx, 0.5 * wx * wrec], rtol=1e-15)
    assert model.metadata.signature is not None


def test_lineage_is_recorded(store_dir, api_run):
    tags = MlflowClient(f"sqlite:///{store_dir}/mlflow.db").get_run(api_run.run_id).data.tags
    import hashlib
    from importlib.metadata import version

    for pkg in ("numpy", "hydra-core", "omegaconf", "mlflow", "matplotlib", "rnnlab"):
        assert tags[f"version.{pkg}"] == version(pkg)
    # run from rnnlab's own checkout (an editable install in its .venv): its commit and lock
    assert tags["uv_lock_sha256"] == hashlib.sha256((REPO / "uv.lock").read_bytes()).hexdigest()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, encoding="utf-8"
    )
    assert tags["git_dirty"] in ("true", "false") and tags["git_commit"] == head.stdout.strip()
    assert tags["data_recipe"] == "lab8" and tags["data_seed"] == "61185"
    assert len(tags["data_digest"]) == 16


def test_rerun_in_process_is_bitwise_equal(tmp_path, store_dir, api_run):
    uri = f"sqlite:///{store_dir}/mlflow.db"
    client = MlflowClient(uri)
    again = rerun_run(LocalRecorder(quiet=True), client, api_run.run_id, [], tmp_path / "reruns")
    assert histories(client, again.run_id) == histories(client, api_run.run_id)
    assert again.experiment_id == api_run.experiment_id
    run = client.get_run(again.run_id)
    assert run.data.tags["rerun_of"] == api_run.run_id
    assert figure_bytes(client, again.run_id, tmp_path) == figure_bytes(
        client, api_run.run_id, tmp_path
    )


def test_rerun_errors_are_clear_and_create_no_run(tmp_path, store_dir, api_run):
    uri = f"sqlite:///{store_dir}/mlflow.db"
    client = MlflowClient(uri)
    with pytest.raises(RerunError, match="no run 'nope'"):
        rerun_run(LocalRecorder(quiet=True), client, "nope", [], tmp_path)
    bare = client.create_run(api_run.experiment_id).info.run_id
    client.set_terminated(bare)
    with pytest.raises(RerunError, match="has no logged config"):
        rerun_run(LocalRecorder(quiet=True), client, bare, [], tmp_path)
    with pytest.raises(RecordError, match="no run 'nope'"):
        rnnlab.load("nope", tracking_uri=uri)
    n_runs = len(client.search_runs([api_run.experiment_id]))
    with pytest.raises(Exception, match=r"optimizer\.bogus"):
        rerun_run(
            LocalRecorder(quiet=True), client, api_run.run_id, ["optimizer.bogus=1"], tmp_path
        )
    assert len(client.search_runs([api_run.experiment_id])) == n_runs


def test_rerun_cli_default_gd_and_bad_ids(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(SMALL, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    (orig,) = client.search_runs(["1"])
    rid = orig.info.run_id
    proc = run_cli([rid], cwd=tmp_path, script="rnnlab-rerun")
    assert proc.returncode == 0, proc.stderr
    assert "recorded by" not in proc.stdout  # the same rnnlab version: nothing to say
    client.set_tag(rid, "version.rnnlab", "0.0.1")  # as if an older rnnlab had made it
    proc = run_cli([rid, "optimizer=gd"], cwd=tmp_path, script="rnnlab-rerun")
    assert proc.returncode == 0, proc.stderr
    noted = [line for line in proc.stdout.splitlines() if "recorded by" in line]
    assert noted == [
        f"run {rid} was recorded by rnnlab 0.0.1; this is rnnlab {version('rnnlab')} (its "
        "config is checked against the logged one)"
    ]
    runs = {
        r.data.params["optimizer.name"] + ("-rerun" if "rerun_of" in r.data.tags else ""): r
        for r in client.search_runs(["1"])
    }
    same, gd = runs["rprop-rerun"], runs["gd-rerun"]
    assert same.data.tags["rerun_of"] == rid == gd.data.tags["rerun_of"]
    assert histories(client, same.info.run_id) == histories(client, rid)
    assert figure_bytes(client, same.info.run_id, tmp_path) == figure_bytes(client, rid, tmp_path)
    assert histories(client, gd.info.run_id) != histories(client, rid)
    assert gd.data.params["optimizer.learning_rate"] == "1e-05"

    for args, expected in [
        (["deadbeef"], "no run 'deadbeef'"),
        ([rid, "optimizer=nadam"], "optimizer=nadam"),
        ([rid, "init.wx=abc"], "init.wx=abc"),
    ]:
        proc = run_cli(args, cwd=tmp_path, script="rnnlab-rerun")
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert len(client.search_runs(["1"])) == 3


def test_rerun_of_a_sweep_parent_reruns_every_child(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(
        ["-m", "init=steady,vanish,explode", "iterations=20", "plots=none"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    (parent,) = [r for r in client.search_runs(["1"]) if r.data.tags.get("sweep") == "true"]
    proc = run_cli([parent.info.run_id], cwd=tmp_path, script="rnnlab-rerun")
    assert proc.returncode == 0, proc.stderr
    parents = [r for r in client.search_runs(["1"]) if r.data.tags.get("sweep") == "true"]
    (new,) = [p for p in parents if p.data.tags.get("rerun_of") == parent.info.run_id]
    assert new.info.status == "FINISHED"
    kids = [
        r
        for r in client.search_runs(["1"])
        if r.data.tags.get("mlflow.parentRunId") == new.info.run_id
    ]
    old_kids = [
        r
        for r in client.search_runs(["1"])
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    ]
    assert len(kids) == len(old_kids) == 3
    by_init = {k.data.params["init.name"]: k for k in old_kids}
    for kid in kids:
        orig = by_init[kid.data.params["init.name"]]
        assert kid.data.tags["rerun_of"] == orig.info.run_id
        assert histories(client, kid.info.run_id) == histories(client, orig.info.run_id)
    assert "3 jobs, 3 finished, 0 diverged, 0 failed" in proc.stdout
    # the new parent's id, then one line per job
    assert new.info.run_id in proc.stdout.splitlines()[0]
    assert sum(ln.startswith("[job ") for ln in proc.stdout.splitlines()) == 3


def test_rerun_of_a_sweep_whose_job_was_killed_before_it_logged_its_config(tmp_path):
    """A job killed at its start (kill -9 to the sweep) has a run but no config/: the
    sweep's plan composes it again; a FINISHED job without its config is refused."""
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(["-m", "init=steady,vanish", "iterations=20", "plots=none"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    runs = client.search_runs(["1"])
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    kid = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id)
    artifacts = Path(kid.info.artifact_uri.removeprefix("file://"))
    shutil.rmtree(artifacts / "config")
    proc = run_cli([parent.info.run_id], cwd=tmp_path, script="rnnlab-rerun")
    assert proc.returncode == 2 and "has no logged config" in proc.stderr, proc.stderr
    client.set_terminated(kid.info.run_id, "KILLED")
    proc = run_cli([parent.info.run_id], cwd=tmp_path, script="rnnlab-rerun")
    assert proc.returncode == 0, proc.stderr
    assert "2 jobs, 2 finished, 0 diverged, 0 failed" in proc.stdout
