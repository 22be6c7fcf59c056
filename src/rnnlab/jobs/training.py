"""One job: config in, trained network and one MLflow run out, in three steps.

    result = compute(config)                pure: data, gradient check, training, test
    write(result, folder)                   CSV/JSON/figures from the result alone
    record(client, run_id, result, folder)  metrics, tags, artifacts, model

``execute`` (behind the ``@hydra.main`` entry point, the Python API and reruns) checks
the config, opens the run in ``store.runs.owned_run`` (so a crash or a signal still ends
it FAILED or KILLED) and runs the three steps inside it. ``rnnlab-plot`` reuses
``draw_figures`` on a result read back from the store; a basin map is the same three
steps with ``compute_basin``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from rnnlab.config import (
    optimizer_id,
    run_params,
    to_container,
    validate,
)
from rnnlab.core.data import Dataset
from rnnlab.core.gradcheck import PARAMS
from rnnlab.jobs.compute import compute
from rnnlab.jobs.files import write, write_config
from rnnlab.jobs.results import GradientCheckFailed, JobResult, RunResult
from rnnlab.jobs.text import SweepJob, description, run_name


def record(
    client,
    experiment_id: str,
    run_id: str,
    result: JobResult,
    log_model: bool,
    job: SweepJob | None = None,
) -> None:
    """What ``compute`` made, onto the open run: metrics, tags (status, description, a
    diverged run's name), the dataset, the model. (``write``'s files are logged apart.)
    The step metrics are ``step_metrics.run``'s series, a sweep's child (``job``)
    ``step_metrics.sweep_job``'s, thinned to ``sweep_job_points``."""
    from rnnlab.store import log, models

    traj = result.trajectory
    chosen = result.config["step_metrics"]
    names, points = (
        (chosen["sweep_job"], chosen["sweep_job_points"]) if job else (chosen["run"], None)
    )
    columns = {k: v for k, v in traj.columns().items() if k in names}
    log.log_batch(
        client,
        run_id,
        metrics=[*log.scalars(result.summary), *log.series(columns, points=points)],
        tags={
            "status": traj.status,
            "data_digest": result.dataset.digest,
            log.NOTE_TAG: description(result),
            log.RUN_NAME_TAG: run_name(result.config, traj, job),
        },
    )
    log_dataset(client, run_id, result.dataset)
    if log_model and np.all(np.isfinite(traj.final_w)):
        models.log_model(
            client,
            experiment_id,
            run_id,
            *traj.final_w,
            result.config["data"]["test_sequence"],
        )


def log_dataset(client, run_id: str, d: Dataset) -> None:
    from rnnlab.store import log

    name = f"{d.recipe}-{d.X.shape[0]}x{d.X.shape[1]}-seed{d.seed}"
    log.log_dataset(client, run_id, name, d.digest, d.X, d.t)


def open_store(t: Mapping[str, Any], tracking_uri: str | None, experiment_id: str | None):
    """(client, absolute store URI, experiment id) for a job: the given URI and experiment
    (a sweep's), or the tracking config's, the experiment created if missing."""
    from rnnlab.store import client as client_mod
    from rnnlab.store import experiments, uris

    tracking_uri = uris.resolve_uri(tracking_uri or t["uri"])
    client = client_mod.client_for(tracking_uri)
    if experiment_id is None:
        experiment_id = experiments.ensure_experiment(
            client, t["experiment"], t["artifact_root"], t["description"]
        )
    return client, tracking_uri, experiment_id


@dataclass
class Prepared:
    """A job computed and written, not yet recorded: ``prepare``'s half of ``execute``
    (picklable: the ``rnnlab`` command prepares in a worker process and records in the
    launching one, see ``app``)."""

    config: dict[str, Any]
    overrides: list[str]
    folder: Path  # the run's artifact layout (config/ is written when the run opens)
    result: JobResult | None
    problem: BaseException | None  # a bad value (in a sweep), a failed gradient check, a bug
    files: Any = None  # forked.Forked writing the files, while the run is recorded


@dataclass
class Opened:
    """A job's run, open in the store: ``open_run``'s half of ``execute``."""

    client: Any
    experiment_id: str
    tracking_uri: str
    run_id: str
    job: SweepJob | None = None


def prepare(
    cfg: DictConfig,
    output_dir: Path,
    overrides: Sequence[str] = (),
    in_sweep: bool = False,
    config: dict[str, Any] | None = None,
) -> Prepared:
    """Check, compute and write one job, before (or while) its run is opened.

    Alone, a bad value raises ConfigError: no run will exist. Inside a sweep it becomes
    the job's ``problem``, which fails the job's run, so the sweep's record names it.
    The job's files and figures are drawn in a forked child (``proc.forked.Forked``) where
    that is enabled: ``finish_run`` waits for them.
    """
    from rnnlab.proc.forked import Forked

    if not in_sweep:
        validate(cfg)
    config = to_container(cfg) if config is None else config
    folder = Path(output_dir) / "artifacts"
    prepared = Prepared(config, list(overrides), folder, None, None)
    try:
        validate(cfg)
        prepared.result = compute(config)
        prepared.files = Forked(write, prepared.result, folder)
    except Exception as exc:
        prepared.problem = exc
    return prepared


def open_run(
    config: dict[str, Any],
    overrides: Sequence[str],
    folder: Path,
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
    source: str | None = None,
    job: SweepJob | None = None,
) -> Opened:
    """Open the job's run (its store and experiment first): params, tags, config files.

    Inside a sweep, ``experiment_id`` and the launcher's absolute ``tracking_uri`` come
    from the sweep (which created the store and experiment once, before any job);
    alone, the experiment named by ``tracking.experiment`` is looked up or created.
    """
    from rnnlab import console
    from rnnlab.store import lineage, log, runs

    client, tracking_uri, experiment_id = open_store(
        config["tracking"], tracking_uri, experiment_id
    )
    config["tracking"]["uri"] = tracking_uri  # the store it is really in
    if parent_run_id is None:
        from rnnlab.store import orphans, ui

        orphans.offer(client)
        ui.save_results_view(client, experiment_id)
    tags = {
        **lineage.source_tags(console.redact(source or " ".join(["rnnlab", *overrides]))),
        "optimizer": optimizer_id(config["optimizer"]),
        "init": config["init"]["name"],
        "data_recipe": config["data"]["recipe"],
        "data_seed": str(config["data"]["seed"]),
        **(extra_tags or {}),
    }
    params = {**run_params(config), **(job.params if job else {})}
    run_id = runs.start(
        client, experiment_id, run_name(config, job=job), tags, parent_run_id, params
    )
    with runs.owning(client, run_id, finish=False):
        log.log_files(client, run_id, write_config(config, overrides, folder), "config")
    return Opened(client, experiment_id, tracking_uri, run_id, job)


def finish_run(opened: Opened, prepared: Prepared, log_model: bool | None = None) -> RunResult:
    """Record the prepared job on its open run and end it (FINISHED; FAILED with the
    error; KILLED on a signal)."""
    from rnnlab.store import log, runs

    client, run_id, config = opened.client, opened.run_id, prepared.config
    try:
        with runs.owning(client, run_id):
            problem = prepared.problem
            if isinstance(problem, GradientCheckFailed):
                errors = {f"gradcheck_rel_error_{p}": problem.check.rel_error[p] for p in PARAMS}
                log.log_batch(client, run_id, metrics=log.scalars(errors))
            if problem is not None:
                raise problem
            wants_model = config["tracking"]["log_model"] if log_model is None else log_model
            record(client, opened.experiment_id, run_id, prepared.result, wants_model, opened.job)
            if prepared.files is not None:
                prepared.files.wait()
            for sub in ("data", "results", "figures"):
                if (prepared.folder / sub).is_dir():
                    log.log_files(client, run_id, prepared.folder / sub, sub)
    finally:
        if prepared.files is not None:
            prepared.files.cancel()
    result = prepared.result
    return RunResult(
        run_id=run_id,
        experiment_id=opened.experiment_id,
        tracking_uri=opened.tracking_uri,
        config=config,
        trajectory=result.trajectory,
        gradcheck=result.gradcheck,
        summary=result.summary,
    )


def execute(
    cfg: DictConfig,
    output_dir: Path,
    overrides: Sequence[str] = (),
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
    source: str | None = None,
    log_model: bool | None = None,
    job: SweepJob | None = None,
) -> RunResult:
    """Run one job as configured and record it as one MLflow run, in this process:
    ``open_run`` (first, so that a crash or a signal is recorded), ``prepare`` (check,
    compute, write), ``finish_run``. Alone, a bad value raises ConfigError before any
    run exists; inside a sweep (``parent_run_id``) it fails the job's run instead."""
    from rnnlab.store import runs

    if parent_run_id is None:
        validate(cfg)
    config = to_container(cfg)
    opened = open_run(
        config,
        overrides,
        Path(output_dir) / "artifacts",
        parent_run_id,
        experiment_id,
        extra_tags,
        tracking_uri,
        source,
        job,
    )
    with runs.owning(opened.client, opened.run_id, finish=False):
        prepared = prepare(cfg, output_dir, overrides, in_sweep=True, config=config)
    return finish_run(opened, prepared, log_model)
