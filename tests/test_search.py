"""Issue 22: a sweeper that decides its jobs as it goes (Optuna's; any other through the
same plan) reads like a grid sweep: the search space and the sampler as the parent's
params, trials named by number and searched values, the searched keys as columns, the
study (best params and value, the trials, its course) recorded on the parent."""

from __future__ import annotations

import csv
import json
import math
import re
import shlex

import pytest
import yaml
from conftest import new_store, run_cli
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from rnnlab.store import ui
from rnnlab.sweeps.plan import plan, shared_params

SPACE = "tag(log,interval(0.0001,1))"


def test_the_plan_of_a_search_is_its_space_and_its_sweepers_settings():
    # any sweeper but the grid's: its searched keys from hydra.sweeper.params and the
    # command line, its settings (but the params) flattened
    config = OmegaConf.create(
        {
            "hydra": {
                "sweeper": {
                    "_target_": "hydra_plugins.some_sweeper.SomeSweeper",
                    "optim": {"budget": 12, "seed": 7},
                    "params": {"optimizer.learning_rate": "interval(0.001, 0.1)"},
                },
                "overrides": {"task": ["init=choice(steady,vanish)", "iterations=50"]},
            }
        }
    )
    p = plan(config)
    assert p.searched and p.jobs == []
    assert p.swept == {
        "optimizer.learning_rate": ["interval(0.001, 0.1)"],
        "init": ["choice(steady,vanish)"],
    }
    assert p.sweeper == {
        "sweeper._target_": "hydra_plugins.some_sweeper.SomeSweeper",
        "sweeper.optim.budget": "12",
        "sweeper.optim.seed": "7",
    }
    params = shared_params({"iterations": 50}, p)
    assert params["sweep.optimizer.learning_rate"] == "interval(0.001, 0.1)"
    assert params["sweeper.optim.seed"] == "7"


def search(tmp_path, sweeper: list[str]):
    """A 4-trial search of Adam's rate from steady (60 iterations) with ``sweeper``'s
    settings, on a fresh store: (client, its parent run, its children in job order)."""
    new_store(tmp_path / "outputs" / "mlflow.db")
    args = ["-m", *sweeper, "optimizer=adam", f"optimizer.learning_rate={SPACE}"]
    proc = run_cli([*args, "init=steady", "iterations=60", "plots.dpi=30"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("rnnlab").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = sorted(
        (r for r in runs if r is not parent), key=lambda r: int(r.data.tags["sweep_job"])
    )
    # each job's line says its drawn value as the names do: rounded (the param is exact)
    said = dict(re.findall(r"^\[job (\d+)\] optimizer\.learning_rate=(\S+):", proc.stdout, re.M))
    assert len(said) == len(children), proc.stdout
    for child in children:
        rate = float(child.data.params["choice.optimizer.learning_rate"])
        assert said[child.data.tags["sweep_job"]] == f"{rate:.4g}"
        assert child.data.tags["in_sweep"] == parent.info.run_name  # the view's sweep column
        # drawn on a log scale: its log10 too, the first axis of MLflow's compare page
        log10 = float(child.data.params["choice.log10.optimizer.learning_rate"])
        assert log10 == math.log10(rate)
    # the results view charts the search: the log10 of its rate against the result's
    envelope = json.loads(client.get_experiment(parent.info.experiment_id).tags[ui.VIEW_TAG])
    charts = json.loads(envelope["state"])["compareRunCharts"]
    (parallel,) = [c for c in charts if c["type"] == "PARALLEL"]
    assert parallel["selectedParams"] == ["choice.log10.optimizer.learning_rate"]
    assert parallel["selectedMetrics"] == ["log10_final_loss"]
    return client, parent, children


@pytest.mark.slow
def test_an_optuna_search_reads_like_a_grid_sweep(tmp_path):
    client, parent, children = search(
        tmp_path,
        ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.sampler.seed=3"],
    )
    assert len(children) == 4 and parent.info.status == "FINISHED"
    # the search space and the sampler with its seed
    p = parent.data.params
    assert p["sweep.optimizer.learning_rate"] == SPACE
    assert p["sweeper.sampler._target_"] == "optuna.samplers.TPESampler"
    assert p["sweeper.sampler.seed"] == "3" and p["sweeper.n_trials"] == "4"
    assert "optimizer.learning_rate" not in p  # searched, so not shared
    # trials named by number and searched value; the value as a param
    rates = []
    for num, child in enumerate(children):
        rate = float(child.data.params["choice.optimizer.learning_rate"])
        assert 1e-4 <= rate <= 1 and float(child.data.params["optimizer.learning_rate"]) == rate
        # the value the search drew first: all else is alike, and names are cut short
        assert child.info.run_name.startswith(f"#{num} learning_rate={rate:.4g} adam-steady")
        rates.append(rate)
    # the study: best params and value, the same as Optuna's own record of it
    finished = [
        c for c in children if c.info.status == "FINISHED" and c.data.tags["status"] != "diverged"
    ]
    best = min(finished, key=lambda c: c.data.metrics["final_loss"])
    assert parent.data.metrics["best_final_loss"] == best.data.metrics["final_loss"]
    assert parent.data.tags["best_run_id"] == best.info.run_id
    best_rate = best.data.params["choice.optimizer.learning_rate"]
    assert parent.data.tags["best.optimizer.learning_rate"] == best_rate
    folder = tmp_path / "dl"
    optuna = yaml.safe_load(
        open(
            client.download_artifacts(
                parent.info.run_id, "sweep/optimization_results.yaml", str(folder)
            ),
            encoding="utf-8",
        )
    )
    assert math.isclose(optuna["best_value"], best.data.metrics["final_loss"], rel_tol=1e-12)
    assert math.isclose(optuna["best_params"]["optimizer.learning_rate"], float(best_rate))
    # the trials as the summary table, the searched key a column; the jobs it ran as its plan
    with open(
        client.download_artifacts(parent.info.run_id, "summary/summary.csv", str(folder)),
        encoding="utf-8",
    ) as f:
        rows = list(csv.DictReader(f))
    assert [float(r["optimizer.learning_rate"]) for r in rows] == rates
    assert [r["run_id"] for r in rows] == [c.info.run_id for c in children]
    with open(
        client.download_artifacts(parent.info.run_id, "sweep/jobs.json", str(folder)),
        encoding="utf-8",
    ) as f:
        jobs = json.load(f)
    assert jobs["searched"] is True and len(jobs["jobs"]) == 4
    assert [
        float(next(o for o in job if o.startswith("optimizer.learning_rate=")).split("=")[1])
        for job in jobs["jobs"]
    ] == rates
    figures = {f.path for f in client.list_artifacts(parent.info.run_id, "figures")}
    assert "figures/optimisation_history.png" in figures
    # the results view has the searched key's column
    view = json.loads(client.get_experiment(parent.info.experiment_id).tags[
        "mlflow.sharedViewState.rnnlab-results"
    ])  # fmt: skip
    assert "params.`choice.optimizer.learning_rate`" in json.loads(view["state"])["selectedColumns"]
    # a rerun of the search reruns its trials, and its trials read as the search's did
    proc = run_cli([parent.info.run_id, "plots.dpi=30"], cwd=tmp_path, script="rnnlab-rerun")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (again,) = [
        r
        for r in client.search_runs([parent.info.experiment_id])
        if r.data.tags.get("rerun_of") == parent.info.run_id
    ]
    reruns = sorted(
        client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{again.info.run_id}'"
        ),
        key=lambda r: int(r.data.tags["sweep_job"]),
    )
    assert [float(r.data.params["choice.optimizer.learning_rate"]) for r in reruns] == rates
    for num, (child, rate) in enumerate(zip(reruns, rates, strict=True)):
        assert child.info.run_name.startswith(f"#{num} learning_rate={rate:.4g} adam-steady")
        log10 = float(child.data.params["choice.log10.optimizer.learning_rate"])
        assert log10 == math.log10(rate)
    assert again.data.tags["best_run_id"] in {r.info.run_id for r in reruns}


def test_a_diverged_job_is_infinitely_bad_to_a_sweeper():
    # its last logged loss comes before the blow-up: as a trial value it would look good
    from conftest import compose_config

    from rnnlab.config.composition import to_container
    from rnnlab.jobs.compute import compute

    overrides = ["optimizer=gd", "gd_learning_rate=1e-3", "init=steady", "plots=none"]
    config = to_container(compose_config(overrides))
    result = compute(config)
    assert result.trajectory.diverged and math.isfinite(result.trajectory.final_loss)
    assert result.objective == math.inf
    config["optimizer"]["learning_rate"] = 1e-5  # converges: its final loss
    assert compute(config).objective == compute(config).trajectory.final_loss < 200


@pytest.mark.slow
def test_the_optuna_experiment_chooses_its_sweeper(tmp_path):
    # issue 29: rnnlab's Hydra settings are a group file (conf/hydra/rnnlab.yaml), so an
    # experiment file chooses the sweeper itself (before, only the command line could)
    args = ["-m", "experiment=optimizer_learning_rates_optuna", "optimizer=adam"]
    proc = run_cli([*args, "hydra.sweeper.n_trials=3", "iterations=30"], cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "3 jobs, " in proc.stdout and "Best: #" in proc.stdout
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    exp = client.get_experiment_by_name("optimizer_learning_rates_optuna")
    (parent,) = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
    assert parent.data.params["sweeper.sampler.seed"] == "0"
    assert parent.data.params["sweeper.n_trials"] == "3"
    # issue 31, 7: no Optuna log line ("[I ...] A new study created", coloured) on stderr
    assert proc.stderr == "", proc.stderr
    # issue 31, 4: the parent's Source, run as written, makes the same search again
    source = parent.data.tags["mlflow.source.name"]
    assert source.startswith("rnnlab -m experiment=optimizer_learning_rates_optuna"), source
    again = run_cli(shlex.split(source)[1:], cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == "", again.stderr[-2000:]
    runs = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
    assert len(runs) == 2 and {r.data.metrics["best_final_loss"] for r in runs} == {
        parent.data.metrics["best_final_loss"]
    }


@pytest.mark.slow
def test_a_nevergrad_search_gets_the_same_record(tmp_path):
    # a second sweeper that decides its jobs as it goes, through the same mechanism
    client, parent, children = search(
        tmp_path,
        [
            "hydra/sweeper=nevergrad",
            "hydra.sweeper.optim.budget=4",
            "hydra.sweeper.optim.num_workers=1",
            "hydra.sweeper.optim.seed=2",
        ],
    )
    assert len(children) == 4 and parent.info.status == "FINISHED"
    p = parent.data.params
    assert p["sweep.optimizer.learning_rate"] == SPACE
    assert p["sweeper.optim.budget"] == "4" and p["sweeper.optim.seed"] == "2"
    assert p["sweeper.optim.optimizer"] == "NGOpt"  # the plugin's default
    rates = [float(c.data.params["choice.optimizer.learning_rate"]) for c in children]
    for num, (child, rate) in enumerate(zip(children, rates, strict=True)):
        assert 1e-4 <= rate <= 1
        # the value the search drew first: all else is alike, and names are cut short
        assert child.info.run_name.startswith(f"#{num} learning_rate={rate:.4g} adam-steady")
    best = min(children, key=lambda c: c.data.metrics["final_loss"])
    assert (
        parent.data.tags["best.optimizer.learning_rate"]
        == (best.data.params["choice.optimizer.learning_rate"])
    )
    folder = tmp_path / "dl"
    with open(
        client.download_artifacts(parent.info.run_id, "summary/summary.csv", str(folder)),
        encoding="utf-8",
    ) as f:
        assert [float(r["optimizer.learning_rate"]) for r in csv.DictReader(f)] == rates
    with open(
        client.download_artifacts(parent.info.run_id, "sweep/jobs.json", str(folder)),
        encoding="utf-8",
    ) as f:
        jobs = json.load(f)
    assert jobs["searched"] is True and len(jobs["jobs"]) == 4
    figures = {f.path for f in client.list_artifacts(parent.info.run_id, "figures")}
    assert "figures/optimisation_history.png" in figures
