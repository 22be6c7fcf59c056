"""Every user mistake is one line and exit 2, and leaves nothing half-written.

A table of the bad inputs found by trying (issue 11): malformed overrides, values that
would crash or exhaust the machine once a run exists, unusable stores and tracking URIs,
tasks that do not sweep or rerun, and the helper commands' own mistakes. Each runs the
real command in a subprocess; afterwards the store holds no new run, no run is RUNNING,
no store was created where none was, and no Hydra run folder is left for a refused run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import cli_command, cli_environment, new_store, run_cli
from mlflow.tracking import MlflowClient

from rnnlab.proc import link

pytestmark = [pytest.mark.slow, pytest.mark.faults]


@dataclass
class Case:
    id: str
    args: list[str]
    expected: str  # in the one line after "<prog>: error: "
    script: str = "rnnlab"
    store: str = "ready"  # ready (a store with one run), none, readonly, corrupt, nodir
    env: dict[str, str] = field(default_factory=dict)
    secret: str | None = None  # must appear nowhere in the output


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed


CASES = [
    # malformed overrides (Hydra would stop with a traceback)
    Case("no-equal", ["iterations"], "cannot read the override 'iterations'"),
    Case("double-equal", ["iterations=="], "cannot read the override 'iterations=='"),
    Case("no-key", ["=5"], "the override '=5' has no key"),
    Case("open-list", ["iterations=[1,2"], "cannot read the override 'iterations=[1,2'"),
    Case("empty-argument", [""], "an empty argument is not an override"),
    Case("unquoted-unicode", ["init.name=héllo wörld"], "cannot read the override"),
    # values that crashed or exhausted the machine after the run existed
    Case("huge-step", ["optimizer.initial_step=1e308"], "optimizer.initial_step=1e+308"),
    Case("long-sequences", ["data.seq_len=5000"], "data.seq_len=5000 is not allowed"),
    Case("huge-dpi", ["plots.dpi=100000"], "plots.dpi=100000 is not allowed"),
    Case("endless", ["iterations=10000000"], "iterations=10000000 is not allowed"),
    Case("float-iterations", ["iterations=1e7"], "iterations=1e7"),
    Case("huge-dataset", ["data.n_samples=1000000"], "data.n_samples=1000000 is not allowed"),
    Case(
        "huge-basin",
        ["experiment=basin_map", "basin.resolution=100000"],
        "basin.resolution=100000 is not allowed",
    ),
    # tracking URIs, experiments, artifact folders
    Case("file-uri", ["tracking.uri=file:///tmp/rnnlab-x"], "tracking.uri='file:///tmp/rnnlab-x'"),
    Case("ftp-uri", ["tracking.uri=ftp://host/x"], "tracking.uri='ftp://host/x'"),
    Case("scheme-less-uri", ["tracking.uri=outputs/mlflow.db"], "tracking.uri='outputs/mlflow.db'"),
    Case("long-experiment", [f"tracking.experiment={'x' * 600}"], "tracking.experiment="),
    Case(
        "unwritable-artifacts",
        ["tracking.experiment=fresh", "tracking.artifact_root=/proc/rnnlab"],
        "tracking.artifact_root='/proc/rnnlab' is not allowed",
    ),
    Case(
        "server-down",
        ["tracking=server", "plots=none"],
        "does not answer as an MLflow server (connection refused)",
        env={"MLFLOW_TRACKING_URI": "http://alice:s3cret@127.0.0.1:{port}"},
        secret="s3cret",
    ),
    # stores that cannot be used
    Case("read-only-store", ["plots=none"], "cannot use the MLflow store", store="readonly"),
    Case("corrupt-store", ["plots=none"], "not an SQLite database", store="corrupt"),
    Case("store-in-missing-folder", ["plots=none"], "cannot use the MLflow store", store="nodir"),
    # sweeps of what does not sweep
    Case(
        "missing-option-in-sweep",
        ["-m", "init=steady,nonexistent", "plots=none"],
        "init=nonexistent is not an option of group 'init'",
    ),
    Case(
        "basin-map-sweep",
        ["-m", "experiment=basin_map", "basin.resolution=8,16"],
        "a basin map does not run as a sweep",
    ),
    # the helper commands
    Case(
        "plot-out-is-a-file",
        ["{run}", "--out", "a-file"],
        "cannot write the figures",
        "rnnlab-plot",
    ),
    Case("plot-no-store", ["deadbeef"], "no MLflow store at", "rnnlab-plot", store="none"),
    Case("rerun-bad-override", ["{run}", "iterations"], "cannot read", "rnnlab-rerun"),
    Case("rerun-no-store", ["deadbeef"], "no MLflow store at", "rnnlab-rerun", store="none"),
    Case("rerun-basin-map", ["{basin}"], "is a basin map", "rnnlab-rerun"),
    Case(
        "rerun-interpolation",
        ["{tampered}"],
        "'init.name=${oc.env:HOME}' calls a resolver",
        "rnnlab-rerun",
    ),
    Case(
        "rerun-tracking-key-changed",
        ["{retracked}"],
        "conf/ has changed since run",
        "rnnlab-rerun",
    ),
    Case("doctor-no-store", [], "no MLflow store at", "rnnlab-doctor", store="none"),
    # issue 19: kinds the first table did not list
    Case("null-group", ["init=null"], "init=null is not allowed: choose one of"),
    Case("null-optimizer", ["optimizer=null"], "optimizer=null is not allowed"),
    Case("removed-group", ["~data"], "~data cannot be applied: data is a key of rnnlab's"),
    Case("removed-key", ["~iterations"], "iterations"),
    Case("missing-config-dir", ["--config-dir=/nonexistent"], "--config-dir '/nonexistent'"),
    Case("missing-searchpath", ["hydra.searchpath=[file:///nonexistent]"], "/nonexistent is not"),
    Case("unknown-key", ["+optimizer.foo=1"], "optimizer.foo=1 is not allowed"),
    Case("huge-eps", ["gradcheck.eps=1e300"], "gradcheck.eps=1e+300 is not allowed"),
    Case("env-interpolation", ["init.name=${{oc.env:RNNLAB_NOT_SET}}"], "calls a resolver"),
    Case("unknown-resolver", ["init.name=${{nope:x}}"], "'init.name=${nope:x}' calls a resolver"),
    Case("missing-interpolation", ["init.name=${{nope.key}}"], "'nope.key' not found"),
    Case("run-folder-in-proc", ["hydra.run.dir=/proc/rnnlab/x"], "cannot make the run folder"),
    Case("run-folder-under-a-file", ["hydra.run.dir=a-file/x"], "cannot make the run folder"),
    Case(
        "unreachable-postgres",
        ["tracking.uri=postgresql://u:pw@127.0.0.1:{port}/db"],
        "connection refused",
        secret="pw@",
    ),
    Case("empty-range", ["-m", "iterations=range(5,1)"], "has no values"),
    Case("empty-glob", ["-m", "init=glob(zzz*)"], "has no values"),
    Case("interval-basic", ["-m", "iterations=interval(1,2)"], "not intervals"),
    Case("huge-sweep", ["-m", "iterations=range(1,100000000)"], "99,999,999 jobs"),
    Case("typed-sweep", ["-m", "iterations=3,abc"], "iterations=abc is not allowed"),
    Case(
        "no-joblib-workers",
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0", "iterations=3,4"],
        "hydra.launcher.n_jobs=0 is not allowed",
    ),
    Case(
        "sweep-server-down",
        ["-m", "iterations=3,4", "tracking.uri=http://127.0.0.1:{port}"],
        "does not answer as an MLflow server",
    ),
    Case("sweep-folder-in-proc", ["-m", "hydra.sweep.dir=/proc/x", "iterations=3,4"], "sweep"),
    # a logged run whose artifacts were changed after it ended
    Case("plot-cut-trajectory", ["{cut}"], "results/trajectory.csv cannot be read", "rnnlab-plot"),
    Case("plot-nan-trajectory", ["{nan}"], "not finite", "rnnlab-plot"),
    Case("plot-unknown-figure", ["{nofig}"], "plots.figures=['nope']", "rnnlab-plot"),
    Case("plot-huge-dpi", ["{dpi}"], "plots.dpi=100000 is not allowed", "rnnlab-plot"),
    Case("plot-bad-curves", ["{curves}"], "gradient_over_time.json", "rnnlab-plot"),
]


@pytest.fixture(scope="module")
def ready_store(tmp_path_factory, store_template) -> Path:
    """A store with a run, a basin map and a run with a tampered logged override."""
    work = tmp_path_factory.mktemp("ready")
    new_store(work / "outputs" / "mlflow.db")
    assert run_cli(["plots=none", "iterations=5"], cwd=work).returncode == 0
    basin = ["experiment=basin_map", "basin.resolution=4", "iterations=3", "plots=none"]
    assert run_cli(basin, cwd=work).returncode == 0
    for exp in ("t", "t2", *TAMPERED):
        tracked = ["plots=none", "iterations=5", f"tracking.experiment={exp}"]
        assert run_cli(tracked, cwd=work).returncode == 0
    client = MlflowClient(f"sqlite:///{work}/outputs/mlflow.db")
    ids = {}
    named = (
        ("rnnlab", "run"),
        ("basin_map", "basin"),
        ("t", "tampered"),
        ("t2", "retracked"),
        *((exp, exp) for exp in TAMPERED),
    )
    for exp, key in named:
        (run,) = client.search_runs([client.get_experiment_by_name(exp).experiment_id])
        ids[key] = run.info.run_id
    # the tampered run: its logged overrides pull an environment variable in
    folder = Path(client.get_run(ids["tampered"]).info.artifact_uri[len("file://") :]) / "config"
    (folder / "overrides.yaml").write_text(
        yaml.safe_dump(["init.name=${oc.env:HOME}"]), encoding="utf-8"
    )
    # and one whose logged overrides now change a tracking key its config logged otherwise
    folder = Path(client.get_run(ids["retracked"]).info.artifact_uri[len("file://") :]) / "config"
    (folder / "overrides.yaml").write_text(
        yaml.safe_dump(["tracking.experiment=t2", "tracking.log_model=false"]), encoding="utf-8"
    )
    for key, change in TAMPERED.items():
        change(Path(client.get_run(ids[key]).info.artifact_uri[len("file://") :]))
    return work, ids


def _cut(folder: Path) -> None:
    path = folder / "results" / "trajectory.csv"
    path.write_text(
        path.read_text(encoding="utf-8")[: len(path.read_text(encoding="utf-8")) // 2],
        encoding="utf-8",
    )


def _nan(folder: Path) -> None:
    path = folder / "results" / "trajectory.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = ",".join(["1"] + ["nan"] * (len(lines[2].split(",")) - 1))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _config(folder: Path, key: str, value) -> None:
    path = folder / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["plots"][key] = value
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


TAMPERED = {
    "cut": _cut,
    "nan": _nan,
    "nofig": lambda f: _config(f, "figures", ["nope"]),
    "dpi": lambda f: _config(f, "dpi", 100000),
    "curves": lambda f: (f / "results" / "gradient_over_time.json").write_text(
        '{"points": 3}', encoding="utf-8"
    ),
}


def runs_in(store: Path) -> list:
    client = MlflowClient(f"sqlite:///{store}")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, case, ready_store):
    work, ids = ready_store
    store = tmp_path / "outputs" / "mlflow.db"
    if case.store == "readonly":  # a copy of the store in a folder of its own, read-only
        store = tmp_path / "ro" / "mlflow.db"
        shutil.copytree(work / "outputs", store.parent, ignore=shutil.ignore_patterns("runs"))
        case.args = [*case.args, f"tracking.uri=sqlite:///{store}"]
    elif case.store == "ready":
        shutil.copytree(
            work / "outputs", tmp_path / "outputs", ignore=shutil.ignore_patterns("runs")
        )
    elif case.store == "corrupt":
        store.parent.mkdir(parents=True)
        store.write_bytes(os.urandom(4096))
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    args = [a.format(**ids, port=closed_port()) for a in case.args]
    locked = tmp_path / "locked"
    if case.store == "nodir":  # a store whose folder cannot be made
        locked.mkdir(mode=0o555)
        args.append(f"tracking.uri=sqlite:///{locked}/missing/mlflow.db")
    env = {**cli_environment(), **{k: v.format(port=closed_port()) for k, v in case.env.items()}}
    command = cli_command(args, case.script)
    if case.store in ("readonly", "nodir"):
        if case.store == "readonly":
            for path in (store.parent, *store.parent.iterdir()):
                path.chmod(0o555 if path.is_dir() else 0o444)
        # as root, file modes are not enforced unless the capability to ignore them goes
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    before = runs_in(store) if case.store in ("ready", "readonly") else None
    try:
        proc = subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            encoding="utf-8",
        )
    finally:
        if locked.exists():
            locked.chmod(0o755)
        for path in store.parent.rglob("*") if store.parent.exists() else []:
            path.chmod(0o755 if path.is_dir() else 0o644)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1500:], proc.stderr[-1500:])
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{case.script}: error: ") and case.expected in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    if case.secret:
        assert case.secret not in proc.stdout + proc.stderr and "***" in lines[0]
    if case.store == "none":  # looking a run up creates no store
        assert not store.exists() and not (tmp_path / "outputs").exists()
    if before is not None:  # nothing recorded, nothing left RUNNING
        after = runs_in(store)
        assert len(after) == len(before)
        assert all(r.info.status != "RUNNING" for r in after)
    if case.script == "rnnlab" and "-m" not in case.args:  # no run folder for a refused run
        assert not (tmp_path / "outputs" / "runs").exists()
    if case.script == "rnnlab" and "-m" in case.args:  # nor a sweep folder for a sweep
        assert not (tmp_path / "outputs" / "multirun").exists()


def test_a_refused_artifact_folder_does_not_stick_to_the_experiment(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    bad = run_cli(["plots=none", "iterations=3", "tracking.artifact_root=/proc/rnnlab"], tmp_path)
    assert bad.returncode == 2
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    assert client.get_experiment_by_name("rnnlab") is None  # no experiment made with it
    good = run_cli(["plots=none", "iterations=3"], cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    (run,) = client.search_runs([client.get_experiment_by_name("rnnlab").experiment_id])
    assert run.info.status == "FINISHED"


@pytest.mark.parametrize(("scheme", "driver"), [("mysql", "MySQLdb"), ("mssql", "pyodbc")])
def test_a_database_without_its_driver_is_one_line(tmp_path, scheme, driver):
    """Issue 19: a MySQL or SQL Server store (the driver not installed) gave a traceback."""
    with socket.socket() as listening:  # a database that takes connections, on loopback
        listening.bind(("127.0.0.1", 0))
        listening.listen(4)
        port = listening.getsockname()[1]
        uri = f"tracking.uri={scheme}://u:pw@127.0.0.1:{port}/db"
        proc = run_cli([uri, "iterations=3"], tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0] == (
        f"rnnlab: error: cannot use the MLflow store {scheme}://u:***@127.0.0.1:{port}/db: "
        f"its database driver ({driver}) is not installed"
    )
    assert not (tmp_path / "outputs" / "runs").exists()


# In the rnnlab command's worker: the first figure waits until the command has told the
# worker to stop (the store refused its run), then notes whether its folder is still there.
WAIT_FOR_THE_STOP = """
import os, pathlib, time
MAIN = os.getpid()
_write = pathlib.Path.write_bytes
def write_bytes(self, data):
    if self.suffix == ".png" and os.getpid() != MAIN:
        from rnnlab.proc import signals
        deadline = time.monotonic() + 60
        while signals.received() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(os.environ["SEEN_AT_THE_STOP"], "a") as seen:
            seen.write(f"{signals.received()} {self.parent.is_dir()}\\n")
    return _write(self, data)
pathlib.Path.write_bytes = write_bytes
"""


def test_a_refused_runs_folder_goes_once_its_worker_has_stopped(tmp_path):
    """CI: the command removed a refused run's folder while its worker still drew into it;
    the worker's FileNotFoundError came out as a traceback before the one line."""
    if not link.can_fork():
        pytest.skip("one process here: no worker to race")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(WAIT_FOR_THE_STOP, encoding="utf-8")
    seen = tmp_path / "seen.txt"
    env = {**cli_environment(), "PYTHONPATH": str(tmp_path / "site"), "SEEN_AT_THE_STOP": str(seen)}
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(4)
        port = listening.getsockname()[1]
        proc = run_cli(
            [f"tracking.uri=mysql://u:pw@127.0.0.1:{port}/db", "iterations=3"], tmp_path, env=env
        )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert seen.read_text().split() == ["SIGTERM", "True"]  # stopped, its folder still there
    assert not (tmp_path / "outputs" / "runs").exists()  # and gone after


def test_the_logged_model_holds_its_files_only(tmp_path):
    """Issue 19: run from a uv project's folder (as `uv run rnnlab` is), every model
    copied uv.lock, pyproject.toml and a __pycache__ of its code."""
    shutil.copy(Path(__file__).parents[1] / "uv.lock", tmp_path / "uv.lock")
    shutil.copy(Path(__file__).parents[1] / "pyproject.toml", tmp_path / "pyproject.toml")
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(["iterations=5", "plots=none"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (model,) = (tmp_path / "outputs" / "mlartifacts" / "models").iterdir()
    files = sorted(str(p.relative_to(model)) for p in model.rglob("*") if p.is_file())
    assert files == [
        "artifacts/MLmodel",
        "artifacts/artifacts/weights.json",
        "artifacts/conda.yaml",
        "artifacts/input_example.json",
        "artifacts/pyfunc_model.py",
        "artifacts/python_env.yaml",
        "artifacts/requirements.txt",
        "artifacts/serving_input_example.json",
    ]


def test_a_key_one_swept_option_lacks_is_one_line_before_any_job_runs(tmp_path):
    # optimizer.eta_minus is RProp's: the sweeper composes the gd job before any job runs
    # (its covering jobs), while the recorder opens the parent: that parent ends FAILED,
    # its jobs NOT STARTED, and the worker's line is the only one
    new_store(tmp_path / "outputs" / "mlflow.db")
    args = ["-m", "optimizer=rprop,gd", "optimizer.eta_minus=0.3", "iterations=20", "plots=none"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "eta_minus" in line and "GDConfig" in line
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["FAILED"]  # the parent only: no job ran
    assert runs[0].data.metrics["jobs_not_started"] == 2


def test_a_config_error_with_a_refused_store_leaves_no_folder_and_no_secret(tmp_path):
    # the worker finds the key error while the recorder is refused the store: one line,
    # and the sweep's folder (its multirun.yaml holds the URI's password) goes too
    uri = "postgresql://u:s3cretpw@127.0.0.1:1/db"
    args = ["-m", "optimizer=rprop,gd", "optimizer.eta_minus=0.3", f"tracking.uri={uri}"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    (line,) = proc.stderr.strip().splitlines()
    assert "eta_minus" in line and "s3cretpw" not in line
    assert not (tmp_path / "outputs").exists()
    assert not any(
        "s3cretpw" in p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file()
    )
