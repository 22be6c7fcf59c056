"""One multirun, one parent MLflow run: a Hydra callback and the sweep's summary.

``MlflowSweepCallback.on_multirun_start`` runs in the launching process. It plans the
sweep (the job list Hydra's basic sweeper will run, from the same overrides), checks it
(a task that cannot be swept, an option that does not exist, a store that does not
answer: one line, exit 2, nothing created), creates the store and the experiment once
(a fresh store's migrations and experiment creation race when several processes do
them), and opens the parent run with the shared config and the swept keys as params and
the job list as an artifact. Hydra pickles the callback into every worker (joblib, Ray),
where ``on_job_start`` publishes the parent to the job (``current()``), so each job's
run becomes a child (``mlflow.parentRunId``, tag ``sweep_job``) in the parent's
experiment.

``finalize`` (from ``on_multirun_end``, or from ``app.cli`` on an error or a signal:
Hydra 1.3 skips ``on_multirun_end`` when a job raises) ends children that were left
RUNNING, reads the children back from the store, and gives the parent its summary
(table, metrics, description, comparison figures, the best run's model) and FINISHED,
FAILED or KILLED.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rnnlab import console, lifecycle, tracking
from rnnlab.config import CONF_DIR, ConfigError, run_params, to_container, validate

SWEEP_JOB_TAG = "sweep_job"  # on a child: its job number
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
GROUPS = ("data", "init", "optimizer", "plots", "tracking", "experiment")
# A sweep's comparison figures draw every child's path; past this many they would be
# unreadable (and reading every history would make the summary grow with the sweep).
MAX_FIGURE_RUNS = 64


class SweepRefused(BaseException):
    """The sweep cannot start (one line for the user). A BaseException because Hydra
    turns an Exception raised in a callback into a warning and goes on."""


@dataclass(frozen=True)
class SweepContext:
    """What a job inside a sweep needs to attach its run to the parent."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    job_num: int
    launcher_pid: int
    swept: tuple[str, ...] = ()  # the keys the sweep varies: what tells its jobs apart


_current: SweepContext | None = None
_open: dict[str, MlflowSweepCallback] = {}  # parents opened by this process, not yet closed


def current() -> SweepContext | None:
    """The sweep the running job belongs to (None outside a multirun)."""
    return _current


# --- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The jobs of a sweep, in Hydra's order (job i is ``jobs[i]``), and what is swept."""

    jobs: list[list[str]]
    swept: dict[str, list[str]]  # key -> its values, in order


def plan(config: DictConfig) -> Plan | None:
    """The job list Hydra's basic sweeper builds from these overrides (None for another
    sweeper, which decides its jobs as it goes)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if config.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    overrides = OverridesParser.create().parse_overrides(arguments)
    swept: dict[str, list[str]] = {}
    for o in overrides:
        key = o.get_key_element()
        if o.is_sweep_override() and o.is_discrete_sweep():
            swept[key] = list(o.sweep_string_iterator())
        else:
            swept.pop(key, None)  # a later plain value replaces an earlier sweep
    batches = BasicSweeper.split_arguments(overrides, None)
    return Plan(jobs=[job for batch in batches for job in batch], swept=swept)


def _check_plan(p: Plan, config: DictConfig) -> None:
    """Refuse what would fail after the parent exists: options that do not exist, and a
    task that does not run as a sweep."""
    for key, values in p.swept.items():
        group = key.lstrip("+~").split("@")[0]
        if group in GROUPS:
            options = sorted(f.stem for f in (CONF_DIR / group).glob("*.yaml"))
            for v in values:
                if v not in options and v != "null":
                    raise SweepRefused(
                        f"{group}={v} is not an option of group '{group}': "
                        f"choose one of {', '.join(options)}"
                    )
    if config.get("task") == "basin_map" or "experiment" in p.swept:
        tasks = {config.get("task")}
        for v in p.swept.get("experiment", []):
            path = CONF_DIR / "experiment" / f"{v}.yaml"
            tasks.add(OmegaConf.load(path).get("task", "train") if path.exists() else "train")
        if "basin_map" in tasks:
            raise SweepRefused(
                "a basin map does not run as a sweep (-m): one run covers every start "
                "of its grid; run it once per setting instead, e.g. "
                "rnnlab experiment=basin_map basin.resolution=64"
            )


def _swept_prefixes(p: Plan) -> tuple[str, ...]:
    return tuple(k.lstrip("+~").split("@")[0] for k in p.swept)


def _shared_params(config: dict[str, Any], p: Plan) -> dict[str, str]:
    """The parent's params: the config every job shares, and what is swept over what."""
    prefixes = _swept_prefixes(p)
    shared = {
        k: v
        for k, v in run_params(config).items()
        if not any(k == s or k.startswith(s + ".") for s in prefixes)
    }
    return {**shared, **{f"sweep.{k}": ", ".join(v) for k, v in p.swept.items()}}


# --- the callback ---------------------------------------------------------------------


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.config: dict[str, Any] | None = None
        self.plan: Plan | None = None
        self.launcher_pid = os.getpid()

    # --- launching process ---------------------------------------------------------

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        lifecycle.install_signal_handlers()
        self.launcher_pid = os.getpid()
        self.plan = plan(config)
        swept = _swept_prefixes(self.plan) if self.plan else ()
        if self.plan is not None:
            _check_plan(self.plan, config)
        try:
            validate(config)
        except ConfigError as exc:
            if not any(exc.key == s or exc.key.startswith(s + ".") for s in swept):
                raise SweepRefused(str(exc)) from None
        self.config = to_container(config)
        try:
            self.tracking_uri = tracking.resolve_uri(config.tracking.uri)
            client = tracking.client_for(self.tracking_uri)  # creates a fresh store's schema
            self.experiment_id = tracking.ensure_experiment(
                client,
                config.tracking.experiment,
                config.tracking.artifact_root,
                config.tracking.description,
            )
        except tracking.StoreError as exc:
            raise SweepRefused(str(exc)) from None
        except Exception as exc:
            raise SweepRefused(f"cannot use the MLflow store: {tracking.reason(exc)}") from None
        name = f"sweep-{config.hydra.runtime.choices.get('experiment') or 'rnnlab'}"
        overrides = list(config.hydra.overrides.task)
        params = _shared_params(self.config, self.plan) if self.plan else {}
        self.parent_run_id = lifecycle.start(
            client,
            self.experiment_id,
            name,
            {
                **tracking.source_tags(" ".join(["rnnlab", "-m", *overrides])),
                "sweep": "true",
                "sweep_dir": str(Path(config.hydra.sweep.dir).resolve()),
                "sweep_overrides": json.dumps(overrides),
                tracking.NOTE_TAG: f"Sweep running: {self.jobs_text()}",
            },
            params=params,
        )
        _open[self.parent_run_id] = self
        self._log_plan(client, config)
        console.say(
            f"Sweep {name}: {self.jobs_text()}; MLflow parent run {self.parent_run_id} "
            f"(experiment {self.experiment_id}) in {tracking.redact(self.tracking_uri)}"
        )

    def jobs_text(self) -> str:
        return f"{len(self.plan.jobs)} jobs" if self.plan else "jobs chosen by the sweeper"

    def _log_plan(self, client, config: DictConfig) -> None:
        """The job list (what a rerun of this sweep reruns) and the launching config."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if self.plan:
                (folder / "jobs.json").write_text(
                    json.dumps({"swept": self.plan.swept, "jobs": self.plan.jobs}, indent=1)
                )
            from rnnlab.runner import write_config

            write_config(self.config, list(config.hydra.overrides.task), folder)
            tracking.log_files(client, self.parent_run_id, folder, "sweep")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.finalize()

    # --- each job, in whichever process runs it ------------------------------------

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        if self.parent_run_id is None:
            return  # a single run: no parent
        if os.getpid() != self.launcher_pid:  # a worker process (joblib, Ray)
            lifecycle.install_signal_handlers()
            console.quiet()
            if not getattr(MlflowSweepCallback, "_watching", False):
                lifecycle.watch_parent()
                MlflowSweepCallback._watching = True
        _current = SweepContext(
            self.tracking_uri,
            self.experiment_id,
            self.parent_run_id,
            int(config.hydra.job.num),
            self.launcher_pid,
            tuple(self.plan.swept) if self.plan else (),
        )

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        _current = None

    # --- closing the parent --------------------------------------------------------

    def finalize(self, interrupted: bool = False) -> Summary | None:
        """Summarise the children on the parent and end it; safe to call twice."""
        if self.parent_run_id not in _open:
            return None
        del _open[self.parent_run_id]
        client = tracking.client_for(self.tracking_uri)
        try:
            end_orphaned_children(client, self.experiment_id, self.parent_run_id)
            summary = collect(client, self.experiment_id, self.parent_run_id, self.plan)
            log_summary(client, self.parent_run_id, summary, self.config, self.experiment_id)
            console.say(summary.text())
        except BaseException as exc:
            lifecycle.end(client, self.parent_run_id, "FAILED", f"{type(exc).__name__}: {exc}")
            raise
        if interrupted:
            status = "KILLED"
        else:
            status = "FAILED" if summary.failed or summary.not_started else "FINISHED"
        lifecycle.end(client, self.parent_run_id, status)
        return summary


def finalize_open(interrupted: bool = False) -> list[Summary]:
    """Close every parent this process opened and has not closed (the fallback)."""
    return [s for cb in list(_open.values()) if (s := cb.finalize(interrupted)) is not None]


@atexit.register
def _close_at_exit() -> None:
    for cb in list(_open.values()):
        try:
            cb.finalize(interrupted=True)
        except Exception:  # the store may be gone at exit; nothing more can be done
            pass


def end_orphaned_children(client, experiment_id: str, parent_run_id: str, wait: float = 5.0):
    """Children still RUNNING when the sweep ends: wait a little for their processes to
    end them (a worker marking its run KILLED), then end the rest KILLED."""
    deadline = time.monotonic() + wait
    while True:
        running = tracking.search(
            client,
            [experiment_id],
            f"tags.`{tracking.PARENT_TAG}` = '{parent_run_id}' and attributes.status = 'RUNNING'",
        )
        alive = [r for r in running if lifecycle.owner_alive(r.data.tags)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for r in running:
        owner = r.data.tags.get(lifecycle.PID_TAG, "?")
        why = f"the sweep ended with this job still running (pid {owner})"
        lifecycle.end(client, r.info.run_id, "KILLED", why)


# --- the summary -----------------------------------------------------------------------

RESULT_COLUMNS = [
    "status",
    "training",
    "iterations",
    "final_loss",
    "final_wx",
    "final_wrec",
    "run_name",
    "run_id",
    "error",
]
NOT_STARTED = "NOT STARTED"


@dataclass
class Summary:
    rows: list[dict[str, Any]]
    swept: list[str]  # the swept keys, shown as columns
    paths: dict[str, np.ndarray] = field(default_factory=dict)  # run id -> (n+1, 2) weights
    losses: dict[str, np.ndarray] = field(default_factory=dict)  # run id -> loss per point
    best_learning_rate: float | None = None
    best_rate_median_loss: float | None = None

    @property
    def columns(self) -> list[str]:
        return ["job", *self.swept, *RESULT_COLUMNS]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] not in ("FINISHED", NOT_STARTED)]

    @property
    def not_started(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == NOT_STARTED]

    @property
    def diverged(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("training") == "diverged"]

    @property
    def best(self) -> dict[str, Any] | None:
        """The finished, not diverged job with the lowest final loss."""
        ok = [
            r
            for r in self.rows
            if r["status"] == "FINISHED"
            and r.get("training") != "diverged"
            and r.get("final_loss") is not None
        ]
        return min(ok, key=lambda r: r["final_loss"]) if ok else None

    def table(self) -> dict[str, list]:
        return {c: [r.get(c) for r in self.rows] for c in self.columns}

    def counts(self) -> str:
        finished = [r for r in self.rows if r["status"] == "FINISHED"]
        parts = [
            f"{len(self.rows)} jobs",
            f"{len(finished) - len(self.diverged)} finished",
            f"{len(self.diverged)} diverged",
            f"{len(self.failed)} failed",
        ]
        if self.not_started:
            parts.append(f"{len(self.not_started)} not started")
        return ", ".join(parts)

    def text(self) -> str:
        """The table for the console, then the verdict."""
        shown = self.columns[: self.columns.index("final_wrec") + 1]
        cells = [[_fmt(r.get(c)) for c in shown] for r in self.rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(shown)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip()]
        lines += [
            "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            for row in cells
        ]
        lines.append(self.counts())
        lines += [
            f"  job {r['job']} ({' '.join(r['overrides'])}): {r['error'] or r['status']}"
            for r in self.failed
        ]
        best = self.best
        if best is not None:
            lines.append(
                f"Best: {best['run_name']} (job {best['job']}), final loss "
                f"{best['final_loss']:.6g}; run {best['run_id']}"
            )
        if self.best_learning_rate is not None:
            lines.append(
                f"Best learning rate: {self.best_learning_rate:g} (median final loss "
                f"{self.best_rate_median_loss:.4g} over its starts). Feed it back: "
                f"uv run rnnlab -m experiment=compare_starts "
                f"gd_learning_rate={self.best_learning_rate:g}"
            )
        return "\n".join(lines)

    def description(self, experiment_id: str) -> str:
        """The parent's description (markdown): counts, the best run, what went wrong."""

        def names(rows: list[dict[str, Any]]) -> str:
            return ", ".join(r.get("run_name") or f"job {r['job']}" for r in rows) or "none"

        lines = [f"**{self.counts()}.**"]
        best = self.best
        if best is not None:
            url = f"#/experiments/{experiment_id}/runs/{best['run_id']}"
            lines.append(f"Best: [{best['run_name']}]({url}), final loss {best['final_loss']:.4g}.")
        lines.append(f"Diverged: {names(self.diverged)}.")
        lines.append(f"Failed: {names(self.failed)}.")
        if self.not_started:
            lines.append(f"Not started: {names(self.not_started)}.")
        if self.best_learning_rate is not None:
            lines.append(f"Best learning rate: {self.best_learning_rate:g}.")
        return "  \n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _job_values(overrides: Sequence[str], swept: Sequence[str]) -> dict[str, str]:
    values = dict(o.split("=", 1) for o in overrides if "=" in o)
    return {k: values.get(k) for k in swept}


def collect(client, experiment_id: str, parent_run_id: str, p: Plan | None) -> Summary:
    """One row per planned job (and per child the plan did not name): its child run's
    outcome, or NOT STARTED."""
    children: dict[int, Any] = {}
    for run in tracking.child_runs(client, experiment_id, parent_run_id):
        num = _num(run.data.tags.get(SWEEP_JOB_TAG))
        children[int(num) if num is not None else -len(children) - 1] = run
    jobs = dict(enumerate(p.jobs)) if p else {}
    swept = list(p.swept) if p else []
    rows = []
    for num in sorted(set(jobs) | set(children)):
        run = children.get(num)
        overrides = jobs.get(num) or (
            run.data.tags.get("mlflow.source.name", "").split()[1:] if run else []
        )
        row: dict[str, Any] = {"job": num, "overrides": overrides, **_job_values(overrides, swept)}
        if run is None:
            row.update(status=NOT_STARTED, error=None)
            rows.append(row)
            continue
        m, prm, t = run.data.metrics, run.data.params, run.data.tags
        row.update(
            init=prm.get("init.name"),
            optimizer=prm.get("optimizer.name"),
            learning_rate=_num(prm.get("optimizer.learning_rate")),
            status=run.info.status,
            training=t.get("status"),
            iterations=int(m["iterations"]) if "iterations" in m else None,
            final_loss=m.get("final_loss"),
            final_wx=m.get("final_wx"),
            final_wrec=m.get("final_wrec"),
            run_name=run.info.run_name,
            run_id=run.info.run_id,
            error=t.get(lifecycle.ERROR_TAG) if run.info.status != "FINISHED" else None,
        )
        for k in swept:  # a child the plan did not name: its swept values from its params
            if row.get(k) is None:
                row[k] = prm.get(f"{k}.name", prm.get(k))
        rows.append(row)
    summary = Summary(rows=rows, swept=swept)
    drawn = [r for r in rows if r.get("iterations") is not None]
    if len(drawn) <= MAX_FIGURE_RUNS:
        for r in drawn:
            rid = r["run_id"]
            wx = tracking.metric_history(client, rid, "wx")
            wrec = tracking.metric_history(client, rid, "wrec")
            summary.paths[rid] = np.column_stack([wx, wrec]).reshape(-1, 2)
            summary.losses[rid] = tracking.metric_history(client, rid, "loss")
    _best_learning_rate(summary)
    return summary


def _best_learning_rate(summary: Summary) -> None:
    """Among gradient-descent jobs with several learning rates: the lowest median final
    loss over the starts (a diverged or failed start counts as infinitely bad)."""
    by_rate: dict[float, list[float]] = {}
    for r in summary.rows:
        if r.get("optimizer") == "gd" and r.get("learning_rate") is not None:
            ok = r["status"] == "FINISHED" and r.get("training") != "diverged"
            loss = r.get("final_loss")
            by_rate.setdefault(r["learning_rate"], []).append(
                loss if ok and loss is not None else math.inf
            )
    if len(by_rate) < 2:
        return
    medians = {rate: float(np.median(v)) for rate, v in by_rate.items()}
    best = min(medians, key=lambda rate: (medians[rate], rate))
    if math.isfinite(medians[best]):
        summary.best_learning_rate, summary.best_rate_median_loss = best, medians[best]


def log_summary(
    client, parent_run_id: str, summary: Summary, config: dict[str, Any], experiment_id: str
) -> None:
    """The table (CSV and MLflow table), metrics, tags, description, comparison figures,
    and the best run's model."""
    table = summary.table()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(summary.columns)
    for i in range(len(summary.rows)):
        writer.writerow([_csv(table[c][i]) for c in summary.columns])
    tracking.log_text(client, parent_run_id, buf.getvalue(), "summary/summary.csv")
    tracking.log_table(
        client,
        parent_run_id,
        {c: [_csv(v) for v in table[c]] for c in summary.columns},
        "summary/summary.json",
    )
    tracking.log_text(client, parent_run_id, summary.text(), "summary/summary.txt")
    metrics = {
        "jobs": float(len(summary.rows)),
        "jobs_failed": float(len(summary.failed)),
        "jobs_diverged": float(len(summary.diverged)),
        "jobs_not_started": float(len(summary.not_started)),
        "best_learning_rate": summary.best_learning_rate,
    }
    tags = {
        "failed_jobs": ", ".join(str(r["job"]) for r in summary.failed) or "none",
        tracking.NOTE_TAG: summary.description(experiment_id),
    }
    best = summary.best
    if best is not None:
        metrics["best_final_loss"] = float(best["final_loss"])
        tags.update(best_run_id=best["run_id"], best_run_name=best["run_name"])
    if summary.best_learning_rate is not None:
        tags["best_learning_rate"] = f"{summary.best_learning_rate:g}"
    tracking.log_batch(client, parent_run_id, metrics=tracking.scalars(metrics), tags=tags)
    if summary.paths and config["plots"]["sweep_figures"]:
        _log_figures(client, parent_run_id, summary, config)
    if best is not None and config["tracking"]["log_model"]:
        tracking.log_model(
            client,
            experiment_id,
            parent_run_id,
            best["final_wx"],
            best["final_wrec"],
            config["data"]["test_sequence"],
        )


def _csv(v: Any) -> Any:
    return " ".join(v) if isinstance(v, list) else ("" if v is None else v)


def _log_figures(client, parent_run_id: str, summary: Summary, config: dict[str, Any]) -> None:
    from rnnlab import plots
    from rnnlab.runner import dataset_of

    dataset = dataset_of(config)
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    curves: dict[str, list[tuple[str, np.ndarray, bool]]] = {}
    for r in summary.rows:
        rid = r.get("run_id")
        if rid not in summary.paths:
            continue
        panel = _panel_name(r, summary)
        label = _curve_label(r, summary)
        diverged = r.get("training") == "diverged"
        groups.setdefault(panel, []).append((label, summary.paths[rid]))
        curves.setdefault(panel, []).append((label, summary.losses[rid], diverged))
    p = config["plots"]
    figures = {
        "sweep_trajectories": plots.sweep_trajectories(
            dataset.X, dataset.t, groups, p["overview"], p["resolution"]
        ),
        "sweep_loss_curves": plots.sweep_loss_curves(curves),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, fig in figures.items():
            plots.save(fig, Path(tmp) / f"{name}.{p['format']}", p["format"], p["dpi"])
        tracking.log_files(client, parent_run_id, Path(tmp), "figures")


PANEL_KEYS = ("optimizer", "optimizer.name", "optimizer.learning_rate", "gd_learning_rate")


def _panel_name(row: Mapping[str, Any], summary: Summary) -> str:
    """One panel per optimiser; one per learning rate when several rates are swept."""
    if row["optimizer"] == "rprop":
        return "RProp"
    rates = {r.get("learning_rate") for r in summary.rows if r.get("optimizer") == "gd"}
    if len(rates) > 1:
        return f"gradient descent, lr={row['learning_rate']:g}"
    return f"gradient descent (lr={row['learning_rate']:g})"


def _curve_label(row: Mapping[str, Any], summary: Summary) -> str:
    """The swept values that tell a panel's curves apart (the start, by default)."""
    values = [str(row.get(k)) for k in summary.swept if k not in PANEL_KEYS]
    return ", ".join(values) if values else str(row.get("init"))
