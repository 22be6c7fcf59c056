"""Deleted, purged and restored runs and experiments read as what they are (issue 30,
situation 4): every command that reads a run (rerun, resume, plot, load, compare) says in
one line which run it is and its state; nothing is written for a run in the trash, and
nothing waits in the journal for it; a restored run is a run again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_environment, new_store, run_cli
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from test_user_world import one_error_line

import rnnlab
from rnnlab.store import pending

pytestmark = pytest.mark.slow
TINY = ["iterations=20", "plots=none", "tracking.log_model=false"]


@pytest.fixture
def swept(tmp_path, monkeypatch):
    """A finished 2-job sweep in tmp_path's store: (client, parent id, child ids, env)."""
    monkeypatch.setenv("RNNLAB_STATE_DIR", str(tmp_path / "state"))
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    env = {**cli_environment(), "RNNLAB_STATE_DIR": str(tmp_path / "state")}
    proc = run_cli(["-m", "init=steady,explode", *TINY], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(f"sqlite:///{db}")
    runs = client.search_runs(["1"], run_view_type=ViewType.ALL)
    (p,) = [r.info.run_id for r in runs if r.data.tags.get("sweep") == "true"]
    kids = sorted(r.info.run_id for r in runs if r.info.run_id != p)
    return client, p, kids, env


def statuses(client: MlflowClient) -> dict[str, tuple[str, str]]:
    runs = client.search_runs(["1"], run_view_type=ViewType.ALL)
    return {r.info.run_id: (r.info.status, r.info.lifecycle_stage) for r in runs}


def journal() -> list[dict]:
    f = pending.path()
    return [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines()] if f.exists() else []


def test_a_deleted_sweep_is_not_resumed_rerun_or_journaled(tmp_path, swept):
    client, p, kids, env = swept
    client.delete_run(p)
    client.delete_run(kids[0])
    before = statuses(client)
    for args in ([p, "--resume"], [p], [kids[0]]):
        line = one_error_line(
            run_cli(args, tmp_path, env=env, script="rnnlab-rerun"), "rnnlab-rerun"
        )
        run_id = args[0]
        assert line.startswith(f"rnnlab-rerun: error: run {run_id} is deleted (in the trash of "
                               "experiment 'rnnlab'): restore it first")  # fmt: skip
    line = one_error_line(
        run_cli([kids[0]], tmp_path, env=env, script="rnnlab-plot"), "rnnlab-plot"
    )
    assert f"run {kids[0]} is deleted" in line
    assert statuses(client) == before  # nothing written, nothing started
    assert journal() == []
    uri = f"sqlite:///{tmp_path}/outputs/mlflow.db"
    for call in (lambda: rnnlab.load(kids[0], tracking_uri=uri),
                 lambda: rnnlab.compare([kids[0], kids[1]], tracking_uri=uri),
                 lambda: rnnlab.compare(p, tracking_uri=uri)):  # fmt: skip
        with pytest.raises(LookupError, match="is deleted"):
            call()


def test_a_restored_run_is_a_run_again(tmp_path, swept):
    client, _, kids, env = swept
    client.delete_run(kids[1])
    client.restore_run(kids[1])
    proc = run_cli([kids[1]], tmp_path, env=env, script="rnnlab-rerun")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(f"rerun of {kids[1]}")


def test_a_purged_run_is_named_as_gone(tmp_path, swept):
    client, _, kids, env = swept
    client.delete_run(kids[0])
    gc = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "gc", "--backend-store-uri",
         f"sqlite:///{tmp_path}/outputs/mlflow.db", "--run-ids", kids[0]],
        capture_output=True, encoding="utf-8", timeout=120,
        env={**cli_environment(), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/outputs/mlflow.db"},
    )  # fmt: skip
    assert gc.returncode == 0, gc.stderr
    for script in ("rnnlab-rerun", "rnnlab-plot"):
        line = one_error_line(run_cli([kids[0]], tmp_path, env=env, script=script), script)
        assert line.endswith(f"no run '{kids[0]}' in sqlite:///{tmp_path}/outputs/mlflow.db "
                             "(or it was deleted for good)")  # fmt: skip


def test_a_run_of_a_deleted_experiment_says_so(tmp_path, swept):
    client, p, kids, env = swept
    client.delete_experiment("1")
    line = one_error_line(
        run_cli([kids[0]], tmp_path, env=env, script="rnnlab-rerun"), "rnnlab-rerun"
    )
    assert f"run {kids[0]} is in experiment 'rnnlab' (id 1), which is deleted" in line
    line = one_error_line(
        run_cli([p, "--resume"], tmp_path, env=env, script="rnnlab-rerun"), "rnnlab-rerun"
    )
    assert "which is deleted: restore it first" in line
