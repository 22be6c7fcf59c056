"""One job, one path, whatever launched it: ``recorder.open_run`` (first, so that a crash is
recorded), compute and write, ``recorder.record``, ``recorder.end``. A basin map is the same
steps with another compute. Signals are looked at between the steps and in the numerics."""

from __future__ import annotations

import itertools
import os
import shlex
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.config import optimizer_id, run_params, validate
from rnnlab.config.params import config_key
from rnnlab.errors import StoreFailed, job_error
from rnnlab.jobs import basin_map, text
from rnnlab.jobs.compute import compute
from rnnlab.jobs.files import write, write_config
from rnnlab.jobs.results import GradientCheckFailed, JobResult, scalars, series
from rnnlab.jobs.spec import RunRecord, RunSpec, SweepRef
from rnnlab.proc import signals
from rnnlab.proc.created import Created

_keys = itertools.count()


@dataclass
class Job:
    """One job: its config (``cfg``, composed; ``config``, plain and resolved), the
    overrides that made it, its folder, and where it belongs."""

    cfg: Any  # the composed DictConfig (validated here inside a sweep)
    config: dict[str, Any]
    overrides: list[str]
    folder: Path  # its artifacts' layout: config/, data/, results/, figures/
    source: str = ""  # the command that made it (MLflow's Source)
    sweep: SweepRef | None = None
    job: text.SweepJob | None = None  # a sweep's job: its number and swept values
    tags: dict[str, str] = field(default_factory=dict)  # rerun_of, attempt_of, ...
    experiment_id: str | None = None  # an experiment of its own (a rerun: the original's)
    parent_run_id: str | None = None  # a caller's own MLflow run (the Python API)
    log_model: bool | None = None  # None: as tracking.log_model says (a sweep's child: no)
    created: Created | None = None
    key: str = field(default_factory=lambda: f"{os.getpid()}-{next(_keys)}")

    @property
    def basin(self) -> bool:
        return self.config.get("task") == "basin_map"

    def spec(self) -> RunSpec:
        c = self.config
        if self.basin:
            name = "basin_map"
            tags = {"task": "basin_map", "optimizers": ",".join(c["basin"]["optimizers"])}
        else:
            name = text.run_name(c, job=self.job)
            tags = {"optimizer": optimizer_id(c["optimizer"]), "init": c["init"]["name"]}
        tags |= {"data_recipe": c["data"]["recipe"], "data_seed": str(c["data"]["seed"])}
        label = ""
        if self.job is not None:
            swept = [o for o in self.overrides if config_key(o.split("=", 1)[0]) in self.job.swept]
            said = [text.rounded(o) for o in swept] or self.overrides
            label = f"[job {self.job.num}] {' '.join(said)}"
        return RunSpec(
            tracking=c["tracking"],
            source=self.source or shlex.join(["rnnlab", *self.overrides]),
            name=name,
            tags={**tags, **self.tags},
            params={**run_params(c), **(self.job.params if self.job else {})},
            config_folder=write_config(c, self.overrides, self.folder),
            sweep=self.sweep,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            label=label,
            created=self.created,
        )


def run_job(job: Job, recorder: Any) -> Any:
    """Run ``job`` through ``recorder``; returns what it computed (a ``JobResult``, a basin
    map's ``BasinJob``: ``.objective`` is what a sweeper minimises). A bad value fails the
    run inside a sweep (alone, the caller validates first: no run)."""
    from rnnlab.proc import startup

    startup.settle_gc()  # a process's first job: start-up is over
    recorder.open_run(job.key, job.spec())
    try:
        signals.check()
        if job.sweep is not None:
            validate(job.cfg)
        record, result = (basin_job if job.basin else training_job)(job)
        signals.check()
        recorder.record(job.key, record)
    except StoreFailed:
        raise
    except KeyboardInterrupt as exc:
        why = exc.signal_name if isinstance(exc, signals.Interrupted) else "SIGINT"
        recorder.end(job.key, "KILLED", f"interrupted ({why})")
        raise
    except BaseException as exc:
        if isinstance(exc, GradientCheckFailed):  # the check's numbers, on the failed run
            errors = {f"gradcheck_rel_error_{p}": e for p, e in exc.check.rel_error.items()}
            recorder.record(job.key, RunRecord(metrics=scalars(errors)))
        error = f"{type(exc).__name__}: {exc}"
        recorder.end(job.key, "FAILED", error, traceback.format_exc(), said=job_error(exc))
        raise
    recorder.end(job.key, "FINISHED")
    return result


def training_job(job: Job) -> tuple[RunRecord, JobResult]:
    """Compute and write a training job; its record and result."""
    result = compute(job.config, signals.check)
    write(result, job.folder, signals.check)
    return training_record(result, job.folder, job.job, job.log_model), result


def training_record(
    result: JobResult, folder: Path, job: text.SweepJob | None, log_model: bool | None
) -> RunRecord:
    """What a training run holds: summary metrics, then the step metrics (a single run's
    ``step_metrics.run``, a sweep child's ``step_metrics.sweep_job`` at most
    ``sweep_job_points`` points), its status, description and name, the data, its files,
    the model (not a sweep's child: the sweep logs the best run's)."""
    traj, config = result.trajectory, result.config
    chosen = config["step_metrics"]
    names, points = (
        (chosen["sweep_job"], chosen["sweep_job_points"]) if job else (chosen["run"], None)
    )
    columns = {k: v for k, v in traj.columns().items() if k in names}
    wants = config["tracking"]["log_model"] if log_model is None else log_model
    model = None
    if wants and job is None and np.all(np.isfinite(traj.final_w)):
        wx, wrec = (float(v) for v in traj.final_w)
        model = (wx, wrec, list(config["data"]["test_sequence"]))
    return RunRecord(
        metrics=[*scalars(result.summary), *series(columns, points)],
        tags={
            "status": traj.status,
            "data_digest": result.dataset.digest,
            "mlflow.note.content": text.description(result),
            "mlflow.runName": text.run_name(config, traj, job),
        },
        dataset=result.dataset,
        folders=_folders(folder, ("data", "results", "figures")),
        model=model,
        lines=text.report(result),
        outcome=text.outcome(traj),
    )


def basin_job(job: Job) -> tuple[RunRecord, basin_map.BasinJob]:
    """Compute and write a basin map; its record and result."""
    found = basin_map.compute_basin(job.config, safe_point=signals.check)
    basin_map.write_basin(found, job.folder)
    record = RunRecord(
        metrics=scalars(found.summary),
        tags={"mlflow.note.content": basin_map.basin_description(found)},
        dataset=found.dataset,
        folders=_folders(job.folder, ("results", "figures")),
        lines=[basin_map.basin_report(found.summary), "run_id: {run_id}"],
    )
    return record, found


def _folders(folder: Path, names: Sequence[str]) -> dict[str, Path]:
    return {n: folder / n for n in names if (folder / n).is_dir()}


def job_of(
    cfg: Any,
    config: Mapping[str, Any],
    overrides: Sequence[str],
    output_dir: Path,
    **where: Any,
) -> Job:
    """The job of a composed config, in ``output_dir`` (its artifacts under artifacts/)."""
    return Job(cfg, dict(config), list(overrides), Path(output_dir) / "artifacts", **where)
