"""The conventions of the user's shell, Python, MLflow and Hydra (issue 30, situations 3,
6 and 8): pipes whose reader goes away, closed streams, warnings made errors, MLflow's
experiment variables, and Hydra's ``hydra.job.env_set`` in a sweep."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import cli_environment, new_store, run_cli
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

import rnnlab

TINY = ["iterations=20", "plots=none", "tracking.log_model=false"]


def client_of(db: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{db}")


def runs_of(client: MlflowClient) -> list:
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(ids, run_view_type=ViewType.ALL) if ids else []


def shell(command: str, cwd: Path, env: dict[str, str] | None = None):
    """``command`` through bash (``set -o pipefail`` off: the status of the pipe's first
    command is read from PIPESTATUS), its output read as UTF-8."""
    bin_dir = Path(sys.executable).parent
    env = {**(env or cli_environment()), "PATH": f"{bin_dir}:{cli_environment()['PATH']}"}
    script = f'{command}; echo "status=${{PIPESTATUS[0]}}" >&2'
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, encoding="utf-8", timeout=300
    )


# --- 6. pipes and closed streams --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        "rnnlab --help | true",
        "rnnlab --cfg job | head -1",
        "rnnlab --info searchpath | true",
        "rnnlab-rerun --help | true",
        "rnnlab-doctor --help | head -1",
        "rnnlab-plot --help | true",
    ],
)
def test_a_command_whose_reader_goes_away_ends_quietly(tmp_path, command):
    proc = shell(command, tmp_path)
    assert proc.stderr.strip().splitlines() == ["status=0"], proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("closed", [">&-", "2>&-", "<&- >&- 2>&-", "| true"])
def test_a_run_goes_on_with_its_streams_closed_or_unread(tmp_path, closed):
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    proc = shell(f"rnnlab {' '.join(TINY)} {closed}", tmp_path)
    assert "status=0" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    (run,) = runs_of(client_of(db))
    assert run.info.status == "FINISHED"


@pytest.mark.slow
def test_a_sweep_whose_reader_goes_away_still_records_every_job(tmp_path):
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    proc = shell(f"rnnlab -m init=steady,explode,vanish {' '.join(TINY)} | head -1", tmp_path)
    assert "status=0" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.startswith("Sweep init") and proc.stdout.count("\n") == 1
    runs = runs_of(client_of(db))
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4


# --- 3. warnings made errors ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["error::DeprecationWarning", "error"])
def test_warnings_as_errors_do_not_crash_a_run_a_sweep_or_a_rerun(tmp_path, setting):
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    env = {**cli_environment(), "PYTHONWARNINGS": setting}
    proc = run_cli(TINY, tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs_of(client_of(db))
    sweep = run_cli(["-m", "init=steady,explode", *TINY], tmp_path, env=env)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    again = run_cli([run.info.run_id], tmp_path, env=env, script="rnnlab-rerun")
    assert again.returncode == 0, again.stderr[-3000:]
    doctor = run_cli([], tmp_path, env=env, script="rnnlab-doctor")
    assert doctor.returncode == 0, doctor.stderr[-3000:]
    assert "Traceback" not in proc.stderr + sweep.stderr + again.stderr + doctor.stderr
    assert [r.info.status for r in runs_of(client_of(db))] == ["FINISHED"] * 5
    # the warnings the user asked for are shown (as warnings), not hidden
    assert "Warning" in proc.stderr + sweep.stderr + again.stderr


def test_the_api_under_warnings_as_errors_runs_and_puts_the_filters_back(tmp_path):
    uri = f"sqlite:///{new_store(tmp_path / 'api.db')}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        before = list(warnings.filters)
        result = rnnlab.run([*TINY, f"tracking.uri={uri}"], output_dir=tmp_path / "run")
        assert warnings.filters == before
        again = rnnlab.load(result.run_id, tracking_uri=uri)
    assert again.final_loss == result.final_loss
    assert client_of(tmp_path / "api.db").get_run(result.run_id).info.status == "FINISHED"


# --- 8. MLflow's variables and Hydra's env_set -------------------------------------------


@pytest.mark.slow
def test_mlflow_experiment_name_names_the_experiment_unless_the_config_does(tmp_path):
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    env = {**cli_environment(), "MLFLOW_EXPERIMENT_NAME": "from-env"}
    assert run_cli(TINY, tmp_path, env=env).returncode == 0
    assert run_cli(["-m", "init=steady,explode", *TINY], tmp_path, env=env).returncode == 0
    given = run_cli([*TINY, "tracking.experiment=given"], tmp_path, env=env)
    assert given.returncode == 0
    client = client_of(db)
    names = {client.get_experiment(r.info.experiment_id).name for r in runs_of(client)}
    assert names == {"from-env", "given"}
    assert len(client.search_runs([client.get_experiment_by_name("from-env").experiment_id])) == 4


@pytest.mark.slow
def test_mlflow_experiment_id_names_an_existing_experiment_else_one_line(tmp_path):
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    client = client_of(db)
    theirs = client.create_experiment("theirs")
    # an id is its store's: with no MLFLOW_TRACKING_URI naming this store (a notebook's
    # mlflow.set_experiment sets the id for its own), it names nothing here
    env = {**cli_environment(), "MLFLOW_EXPERIMENT_ID": theirs}
    assert run_cli(TINY, tmp_path, env=env).returncode == 0
    (run,) = runs_of(client)
    assert client.get_experiment(run.info.experiment_id).name == "rnnlab"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"
    assert run_cli(TINY, tmp_path, env=env).returncode == 0
    assert sorted(r.info.experiment_id for r in runs_of(client)) == sorted(
        [run.info.experiment_id, theirs]
    )
    env["MLFLOW_EXPERIMENT_ID"] = "999"
    proc = run_cli(TINY, tmp_path, env=env)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "rnnlab: error: MLFLOW_EXPERIMENT_ID='999' names no experiment to record in: "
        f"experiment 999 does not exist in sqlite:///{db}; unset it, or name one with "
        "MLFLOW_EXPERIMENT_NAME or tracking.experiment"
    ]
    assert len(runs_of(client)) == 2


@pytest.mark.slow
def test_a_sweep_honours_hydra_job_env_set_for_its_store(tmp_path):
    theirs = new_store(tmp_path / "theirs.db")
    proc = run_cli(
        [
            "-m",
            "init=steady,explode",
            *TINY,
            f"+hydra.job.env_set.MLFLOW_TRACKING_URI=sqlite:///{theirs}",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    runs = runs_of(client_of(theirs))
    assert sorted(r.data.tags.get("sweep", "child") for r in runs) == ["child", "child", "true"]
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
