"""rnnlab against a real MLflow tracking server on 127.0.0.1 (started and stopped here)."""

from __future__ import annotations

import pytest
from conftest import MlflowServer, run_cli
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path):
    server = MlflowServer(tmp_path)
    yield server.url
    server.stop()


def test_run_sweep_and_rerun_against_a_tracking_server(tmp_path, server):
    work = tmp_path / "work"
    work.mkdir()
    proc = run_cli(
        [
            "tracking=server",
            f"tracking.uri={server}",
            "iterations=50",
            "plots.resolution=40",
            "plots.dpi=40",
        ],
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    client = MlflowClient(server)
    (run,) = client.search_runs([client.get_experiment_by_name("rnnlab").experiment_id])
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 51
    assert "figures/loss_surface.png" in [
        f.path for f in client.list_artifacts(run.info.run_id, "figures")
    ]
    proc = run_cli([run.info.run_id, "--tracking-uri", server], cwd=work, script="rnnlab-rerun")
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = client.search_runs([run.info.experiment_id])
    (again,) = [r for r in runs if r.data.tags.get("rerun_of") == run.info.run_id]

    def loss(run_id):
        return sorted((m.step, m.value) for m in client.get_metric_history(run_id, "loss"))

    assert loss(again.info.run_id) == loss(run.info.run_id)
    assert len(loss(again.info.run_id)) == 51

    proc = run_cli(
        [
            "-m",
            "experiment=compare_starts",
            "tracking=server",
            f"tracking.uri={server}",
            "init=steady,explode",
            "iterations=20",
            "plots.sweep_figures=false",
            "hydra/launcher=joblib",
        ],
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    exp = client.get_experiment_by_name("compare_starts")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 5 and all(r.info.status == "FINISHED" for r in runs)
