"""rnnlab against a real MLflow tracking server on 127.0.0.1 (started and stopped here)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import new_store, run_cli
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    new_store(tmp_path / "server.db")  # migrated already: the server starts sooner
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow_exe = str(Path(sys.executable).parent / "mlflow")
    proc = subprocess.Popen(
        [
            mlflow_exe,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/server.db",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start")
    yield url
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


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
