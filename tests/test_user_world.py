"""rnnlab in the user's world (issue 18): their folders, their MLflow and Hydra state,
their own configs, every sweep Hydra's grammar accepts, odd values and odd stores.

Each test reproduces a situation users of Hydra and MLflow report, and asserts what the
user sees: the exit status and the one line, the store's content, the files on disk,
the caller's process state.
"""

from __future__ import annotations

import os
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_environment, new_store, run_cli
from mlflow.tracking import MlflowClient

from rnnlab import plots
from rnnlab.config import CONF_DIR, ConfigError, compose, validate
from rnnlab.proc import created
from rnnlab.sweeps import plan

TINY = ["iterations=20", "plots=none", "tracking.log_model=false"]


def one_error_line(proc, prog: str = "rnnlab") -> str:
    """The single line a refused command prints on stderr (exit 2, no traceback)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def runs_in(db: Path) -> list:
    """Every run of the store, deleted experiments' included."""
    from mlflow.entities import ViewType

    client = MlflowClient(f"sqlite:///{db}")
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(ids, run_view_type=ViewType.ALL) if ids else []


# --- 1. only what rnnlab created is removed ---------------------------------------------


def test_note_and_remove_take_away_only_what_the_job_made(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me", encoding="utf-8")
    (user / ".hydra").mkdir()  # a previous run's record: there before, so kept
    c = created.note(user)
    (user / "artifacts").mkdir()
    (user / "app.log").write_text("", encoding="utf-8")
    (user / "results.csv").write_text("the user's, written meanwhile", encoding="utf-8")
    removed = created.remove(c)
    assert sorted(p.name for p in removed) == ["app.log", "artifacts"]
    assert sorted(p.name for p in user.iterdir()) == [".hydra", "notes.txt", "results.csv"]

    deep = tmp_path / "a" / "b" / "run"  # three new folders: all three go, tmp_path stays
    c = created.note(deep)
    (deep / ".hydra").mkdir(parents=True)
    created.remove(c)
    assert not (tmp_path / "a").exists() and tmp_path.is_dir()
    assert created.remove(None) == []  # a folder never noted: nothing is touched


@pytest.mark.slow
@pytest.mark.parametrize("where", ["current folder", "folder with a user's file", "empty folder"])
def test_a_refused_run_leaves_the_users_folders_alone(tmp_path, where):
    """Issue 18, 1: `hydra.run.dir=. hydra.output_subdir=null iterations=-1` in a fresh
    folder removed that folder (and tried its parents)."""
    exp = tmp_path / "exp1"
    exp.mkdir()
    if where == "current folder":
        args = ["hydra.run.dir=.", "hydra.output_subdir=null"]
    else:
        if where == "folder with a user's file":
            (exp / "notes.txt").write_text("mine", encoding="utf-8")
        args = [f"hydra.run.dir={exp}"]
    proc = run_cli([*args, "iterations=-1"], cwd=exp)
    line = one_error_line(proc)
    assert line == "rnnlab: error: iterations=-1 is not allowed: an integer in [1, 100000]"
    assert exp.is_dir()
    expected = ["notes.txt"] if where == "folder with a user's file" else []
    assert sorted(p.name for p in exp.iterdir()) == expected
    # and a run folder rnnlab made itself is still cleaned away, up to what existed
    proc = run_cli(["iterations=-1"], cwd=exp)
    one_error_line(proc)
    assert sorted(p.name for p in exp.iterdir()) == expected


# --- 2. the Python API is a good citizen ------------------------------------------------


def process_state() -> dict:
    """What of the process a library call must leave as it found it."""
    import gc
    import logging
    import signal

    import mlflow
    from hydra.core.global_hydra import GlobalHydra
    from hydra.version import VersionBase
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    gh = GlobalHydra.instance()
    loggers = {"": logging.root}
    loggers.update(
        {
            n: lg
            for n, lg in logging.root.manager.loggerDict.items()
            if isinstance(lg, logging.Logger)
        }
    )
    active = mlflow.active_run()
    return {
        "tracking_uri": utils._tracking_uri,
        "active_run": active.info.run_id if active else None,
        "experiment": fluent._active_experiment_id,
        "hydra": (
            gh.is_initialized(),
            str(gh.hydra.config_loader.get_sources()) if gh.is_initialized() else None,
        ),
        # Hydra's process-wide version base: whether an app naming none changes its cwd
        "hydra_version_base": str(VersionBase.instance().getbase()),
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "loggers": {n: (lg.level, tuple(lg.handlers), lg.disabled) for n, lg in loggers.items()},
        "filters": list(warnings.filters),
        "showwarning": warnings.showwarning,
        "signals": {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)},
        "gc": gc.isenabled(),
        # (MLflow's artifact upload pool stays: its own)
        "threads": sorted(t.name for t in threading.enumerate() if t.name.startswith("rnnlab")),
    }


def assert_same_state(before: dict, after: dict) -> None:
    loggers = after.pop("loggers")
    old = before.pop("loggers")
    # loggers made during the call by a library's import are new, not changed
    assert {n: loggers[n] for n in old} == old
    assert after == before


@pytest.mark.slow
def test_the_api_leaves_the_callers_process_as_it_found_it(tmp_path, monkeypatch):
    """Issue 18, 2: rnnlab.run inside the caller's own MLflow run took over the process's
    tracking URI (the caller's log_metric failed, their run stayed RUNNING); inside a
    caller's Hydra context it raised "GlobalHydra is already initialized"."""
    import mlflow
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import rnnlab

    monkeypatch.chdir(tmp_path)
    theirs = f"sqlite:///{new_store(tmp_path / 'theirs.db')}"
    ours = f"sqlite:///{new_store(tmp_path / 'ours.db')}"
    ours_args = [f"tracking.uri={ours}", f"tracking.artifact_root={tmp_path}/art", *TINY]
    mlflow.set_tracking_uri(theirs)
    try:
        # twice in a row, in a plain script
        before = process_state()
        first = rnnlab.run(["init=steady", *ours_args, "tracking.log_model=true"])
        second = rnnlab.run(["init=vanish", *ours_args])
        assert_same_state(before, process_state())
        assert first.run_id != second.run_id

        # load and compare, twice; they read, they do not take over either
        before = process_state()
        again = rnnlab.load(first.run_id, tracking_uri=ours)
        table = rnnlab.compare([first.run_id, second.run_id], tracking_uri=ours)
        rnnlab.load(second.run_id, tracking_uri=ours)
        assert_same_state(before, process_state())
        assert again.summary["final_loss"] == first.summary["final_loss"]
        assert list(table["run_name"]) == ["rprop-steady", "rprop-vanish"]

        # inside the caller's own Hydra context (a notebook's compose block)
        user_conf = tmp_path / "user_conf"
        user_conf.mkdir()
        (user_conf / "app.yaml").write_text("lr: 0.5\n", encoding="utf-8")
        with initialize_config_dir(config_dir=str(user_conf), version_base="1.3"):
            before = process_state()
            inside = rnnlab.run(["init=explode", *ours_args])
            assert_same_state(before, process_state())
            assert hydra_compose(config_name="app").lr == 0.5  # their Hydra still works
        assert inside.trajectory.iterations == 20

        # inside the caller's own MLflow run, in the same store: a child of their run, in
        # their experiment; their run goes on and ends as they end it
        mlflow.set_experiment("their-notebook")
        with mlflow.start_run() as mine:
            before = process_state()
            child = rnnlab.run(["init=steady", *TINY, f"tracking.artifact_root={tmp_path}/art"])
            assert_same_state(before, process_state())
            mlflow.log_metric("after", 1.0)
        client = MlflowClient(theirs)
        assert client.get_run(mine.info.run_id).info.status == "FINISHED"
        assert client.get_run(mine.info.run_id).data.metrics["after"] == 1.0
        kid = client.get_run(child.run_id)
        assert kid.data.tags["mlflow.parentRunId"] == mine.info.run_id
        assert kid.info.experiment_id == mine.info.experiment_id
        assert child.tracking_uri == theirs

        # inside their run, but recording to another store: an independent run there
        with mlflow.start_run() as mine:
            before = process_state()
            apart = rnnlab.run(["init=steady", *ours_args])
            assert_same_state(before, process_state())
            mlflow.log_metric("after", 2.0)
        assert "mlflow.parentRunId" not in MlflowClient(ours).get_run(apart.run_id).data.tags
        assert MlflowClient(theirs).get_run(mine.info.run_id).info.status == "FINISHED"
    finally:
        mlflow.set_tracking_uri(None)


def test_the_api_checks_its_arguments_and_reading_creates_no_store(tmp_path):
    import rnnlab
    from rnnlab.store.uris import StoreError

    with pytest.raises(TypeError, match="list of strings"):
        rnnlab.run("init=steady")
    with pytest.raises(TypeError, match="run id"):
        rnnlab.load(None)
    with pytest.raises(ValueError, match="at least one run"):
        rnnlab.compare([])
    missing = tmp_path / "nowhere" / "team.db"
    with pytest.raises(StoreError, match="no MLflow store"):
        rnnlab.load("0123", tracking_uri=f"sqlite:///{missing}")
    assert not (tmp_path / "nowhere").exists()


# --- 3. one rule for which store every entry point uses ---------------------------------


@pytest.mark.slow
def test_mlflow_tracking_uri_names_the_store_for_writers_and_readers(tmp_path):
    """Issue 18, 3: with MLFLOW_TRACKING_URI exported, rnnlab wrote to outputs/mlflow.db
    while rnnlab-plot and rnnlab.load looked in the exported store."""
    import subprocess

    from conftest import cli_command

    team = new_store(tmp_path / "team.db")
    env = {**cli_environment(), "MLFLOW_TRACKING_URI": f"sqlite:///{team}"}

    def cli(args, script="rnnlab"):
        return subprocess.run(
            cli_command(args, script),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
        )

    proc = cli(TINY)
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("MLflow run ")]
    assert f"in sqlite:///{team}" in line
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    (run,) = runs_in(team)
    plot = cli([run.info.run_id, "--out", str(tmp_path / "figs")], "rnnlab-plot")
    assert plot.returncode == 0, plot.stderr
    assert len(plot.stdout.splitlines()) == 5
    rerun = cli([run.info.run_id], "rnnlab-rerun")
    assert rerun.returncode == 0, rerun.stderr
    assert len(runs_in(team)) == 2
    doctor = cli([], "rnnlab-doctor")
    assert doctor.returncode == 0, doctor.stderr
    sweep_ = cli(["-m", "init=steady,vanish", *TINY])
    assert sweep_.returncode == 0, sweep_.stderr
    assert len(runs_in(team)) == 5  # 2 + a parent and its 2 children
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


# --- 4. every sweep Hydra's basic sweeper accepts ---------------------------------------


GRAMMAR = [
    (["init=glob(explode*)"], [["init=explode"], ["init=explode_oscillate"]]),
    (
        ["init=glob(*,exclude=[lab_start,steady,vanish*,explode])"],
        [["init=explode_oscillate"]],
    ),
    (["iterations=range(10,31,10)"], [["iterations=10"], ["iterations=20"], ["iterations=30"]]),
    (["init=choice(steady,vanish)"], [["init=steady"], ["init=vanish"]]),
    (["tolerance='0.1','0.2'"], [["tolerance='0.1'"], ["tolerance='0.2'"]]),
    (
        ["init=steady,vanish", "optimizer.eta_plus=1.1,1.5"],
        [
            ["init=steady", "optimizer.eta_plus=1.1"],
            ["init=steady", "optimizer.eta_plus=1.5"],
            ["init=vanish", "optimizer.eta_plus=1.1"],
            ["init=vanish", "optimizer.eta_plus=1.5"],
        ],
    ),
]


@pytest.mark.parametrize(("overrides", "jobs"), GRAMMAR, ids=[" ".join(g[0]) for g in GRAMMAR])
def test_the_sweep_plan_is_hydras_expansion(overrides, jobs):
    """The plan (the parent's job list, what reruns and the doctor use) is the basic
    sweeper's own expansion, glob included (it needs the config loader)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from rnnlab.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        # the config a multirun's callback gets: the command line's sweep overrides as
        # the task's (the compose API itself refuses sweeps)
        cfg = hydra_compose(config_name="config", return_hydra_config=True)
        OmegaConf.update(cfg, "hydra.overrides.task", overrides)
        cfg.hydra.mode = RunMode.MULTIRUN
        p = plan.plan(cfg)
    assert p.jobs == jobs


@pytest.mark.slow
def test_a_glob_and_range_sweep_runs_every_job(tmp_path):
    """Issue 18, 4: `-m 'init=glob(explode*)'` died with "ConfigLoader is not set"."""
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(["-m", "init=glob(explode*)", "iterations=range(10,21,10)", *TINY[1:]], tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = runs_in(tmp_path / "outputs" / "mlflow.db")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    got = sorted((r.data.params["init.name"], r.data.params["iterations"]) for r in children)
    assert got == [
        ("explode", "10"),
        ("explode", "20"),
        ("explode_oscillate", "10"),
        ("explode_oscillate", "20"),
    ]
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    assert parent.data.params["sweep.init"] == "explode, explode_oscillate"
    assert parent.info.status == "FINISHED"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sweep_args", "key"),
    [
        (["tracking.experiment=study-a,study-b"], "tracking.experiment"),
        (["tracking=local,server"], "tracking"),
        (["experiment=compare_starts,gd_learning_rates"], "experiment="),
    ],
)
def test_keys_that_decide_where_runs_go_are_refused_before_anything_exists(
    tmp_path, sweep_args, key
):
    """Issue 18, 4: `-m tracking.experiment=study-a,study-b` put every run in `rnnlab`."""
    proc = run_cli(["-m", *sweep_args, *TINY], tmp_path)
    line = one_error_line(proc)
    assert key in line and "cannot be swept" in line
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


# --- 5. runs composed with the user's own config folders rerun -------------------------


@pytest.mark.slow
def test_a_run_with_a_config_folder_of_ones_own_reruns(tmp_path):
    """Issue 18, 5: `rnnlab --config-dir MYCONF init=mine` ran, but its rerun said
    `init=mine is not an option`."""
    myconf = tmp_path / "myconf"
    (myconf / "init").mkdir(parents=True)
    (myconf / "init" / "mine.yaml").write_text(
        "defaults:\n  - /schema/init@_here_\n  - _self_\nname: mine\nwx: 1.5\nwrec: 0.5\n",
        encoding="utf-8",
    )
    db = new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(["--config-dir", str(myconf), "init=mine", *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = runs_in(db)
    assert run.data.params["init.wx"] == "1.5"
    rerun = run_cli([run.info.run_id], tmp_path, script="rnnlab-rerun")
    assert rerun.returncode == 0, rerun.stderr
    new = [r for r in runs_in(db) if r.data.tags.get("rerun_of") == run.info.run_id]
    assert len(new) == 1 and new[0].data.metrics["final_loss"] == run.data.metrics["final_loss"]

    moved = tmp_path / "elsewhere"
    shutil.move(myconf, moved)
    gone = run_cli([run.info.run_id], tmp_path, script="rnnlab-rerun")
    line = one_error_line(gone, "rnnlab-rerun")
    assert str(myconf) in line and "--config-dir" in line
    there = run_cli([run.info.run_id, "--config-dir", str(moved)], tmp_path, script="rnnlab-rerun")
    assert there.returncode == 0, there.stderr

    # a sweep over the user's option and one of conf/'s, with hydra.searchpath
    (tmp_path / "myconf").symlink_to(moved)
    proc = run_cli(
        ["-m", f"hydra.searchpath=[file://{tmp_path / 'myconf'}]", "init=mine,steady", *TINY],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    (parent,) = [r for r in runs_in(db) if r.data.tags.get("sweep") == "true"]
    again = run_cli([parent.info.run_id], tmp_path, script="rnnlab-rerun")
    assert again.returncode == 0, again.stderr
    assert "[job 1]" in again.stdout


# --- 6. odd values and odd stores ------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "key"),
    [
        pytest.param("init.name=" + "x" * 300, "init.name", id="long init.name"),
        pytest.param("init.name='a b'", "init.name", id="init.name with a space"),
        pytest.param(
            "tracking.description=" + "d" * 6000, "tracking.description", id="long description"
        ),
        pytest.param(
            "+plots.points." + "p" * 80 + "=[1,2]", "plots.points." + "p" * 80, id="long point"
        ),
        pytest.param("data.recipe=" + "r" * 2000, "data.recipe", id="long recipe"),
    ],
)
def test_strings_have_bounds_named_in_one_line(override, key):
    with pytest.raises(ConfigError) as err:
        validate(compose([override]))
    assert err.value.key == key
    assert len(str(err.value)) < 300


@pytest.mark.slow
def test_a_long_name_is_one_line_and_no_run_folder(tmp_path):
    proc = run_cli(["init.name=" + "x" * 300, *TINY], tmp_path)
    assert "init.name=" in one_error_line(proc)
    assert not (tmp_path / "outputs" / "runs").exists()


@pytest.mark.slow
def test_a_moved_store_and_a_deleted_experiment_are_named(tmp_path):
    """Issue 18, 6: a store moved elsewhere said "has no logged config"; a deleted
    experiment was named by id only, with no way out."""
    old = tmp_path / "old"
    old.mkdir()
    new_store(old / "outputs" / "mlflow.db")
    assert run_cli(TINY, old).returncode == 0
    (run,) = runs_in(old / "outputs" / "mlflow.db")
    shutil.move(old, tmp_path / "new")
    uri = f"sqlite:///{tmp_path / 'new' / 'outputs' / 'mlflow.db'}"
    for script in ("rnnlab-plot", "rnnlab-rerun"):
        proc = run_cli([run.info.run_id, "--tracking-uri", uri], tmp_path, script=script)
        line = one_error_line(proc, script)
        assert str(old / "outputs" / "mlartifacts") in line and "moved or copied" in line

    client = MlflowClient(uri)
    client.delete_experiment(run.info.experiment_id)
    proc = run_cli([*TINY, f"tracking.uri={uri}"], tmp_path)
    line = one_error_line(proc)
    assert "tracking.experiment='rnnlab' is a deleted experiment" in line
    assert "experiments restore" in line and "mlflow gc" in line
    assert len(runs_in(tmp_path / "new" / "outputs" / "mlflow.db")) == 1


# --- 7. a loss of exactly 0 --------------------------------------------------------------


def test_zero_losses_are_drawn_at_a_marked_floor_without_warnings():
    """Issue 18, 7: `data=binary init.wx=1 init.wrec=1` (the exact solution) gave two
    "Data has no positive values" warnings and an empty loss panel."""
    n = 5
    columns = {
        "loss": np.array([0.5, 1e-3, 0.0, 0.0, 0.0]),
        "wx": np.ones(n),
        "wrec": np.ones(n),
        "grad_wx": np.array([1.0, 0.1, 0.0, 0.0, 0.0]),
        "grad_wrec": np.zeros(n),
        "step_wx": np.array([0.1, 0.0, 0.0, 0.0]),
        "step_wrec": np.zeros(n - 1),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.training_curves(columns, "RProp")
        steps = plots.steps(columns, "RProp")
        curves = plots.sweep_loss_curves({"RProp": [("a", np.arange(n), columns["loss"], False)]})
    loss_ax = fig.axes[0]
    drawn = loss_ax.lines[0].get_ydata()
    assert np.array_equal(drawn, [0.5, 1e-3, 1e-4, 1e-4, 1e-4])  # a decade below 1e-3
    assert loss_ax.get_ylim()[0] <= 1e-4
    assert any("0 drawn at 10⁻⁴" in t.get_text() for t in loss_ax.texts)
    assert any("0 drawn at" in t.get_text() for t in steps.axes[0].texts)
    assert any("0 drawn at" in t.get_text() for t in curves.axes[0].texts)
    # all zero: drawn at 1e-16, still marked
    assert plots.zero_floor(np.zeros(3)) == 1e-16
    assert plots.zero_floor(np.array([1.0, 2.0])) is None


@pytest.mark.slow
def test_an_exact_solution_run_draws_its_loss_without_warnings(tmp_path):
    new_store(tmp_path / "outputs" / "mlflow.db")
    proc = run_cli(["data=binary", "init.wx=1", "init.wrec=1", "iterations=5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "Final loss 0 after 5 iterations" in proc.stdout
    (figure,) = (tmp_path / "outputs" / "runs").glob("*/*/artifacts/figures/training_curves.png")
    assert figure.stat().st_size > 10_000
