"""One multirun, one parent MLflow run: a Hydra callback and the sweep's summary.

``MlflowSweepCallback.on_multirun_start`` runs in the launching process: it creates
the store and the experiment once (a fresh store's migrations and experiment creation
race when several processes do them), opens the parent run, and keeps only ids and
URIs on itself. Hydra pickles the callback into every worker (joblib, Ray), where
``on_job_start`` publishes the parent to the job (``current()``), so each job's run
becomes a child (``mlflow.parentRunId``) in the parent's experiment, and ``on_job_end``
records the job's outcome as a tag on the parent, from whichever process ran it.

``finalize`` (from ``on_multirun_end``, or from the fallback: Hydra 1.3 skips
``on_multirun_end`` when a job raises) reads the children back from the store and
gives the parent its summary table, the comparison figures, and FINISHED or FAILED.
"""

from __future__ import annotations

import atexit
import io
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rnnlab import plots, tracking
from rnnlab.data import make_dataset

JOB_TAG = "rnnlab.job."  # + job number, on the parent: the job's outcome as JSON
SWEEP_JOB_TAG = "sweep_job"  # on a child: its job number


@dataclass(frozen=True)
class SweepContext:
    """What a job inside a sweep needs to attach its run to the parent."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    job_num: int


_current: SweepContext | None = None
_open: dict[str, MlflowSweepCallback] = {}  # parents opened by this process, not yet closed


def current() -> SweepContext | None:
    """The sweep the running job belongs to (None outside a multirun)."""
    return _current


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.config: dict[str, Any] | None = None

    # --- launching process ---------------------------------------------------------

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from rnnlab.config import ConfigError, to_container, validate

        try:
            validate(config)
        except ConfigError:
            return  # every job will fail with the one-line error; open no parent for them
        self.config = to_container(config)
        self.tracking_uri = tracking.resolve_uri(config.tracking.uri)
        client = tracking.client_for(self.tracking_uri)  # creates a fresh store's schema
        self.experiment_id = tracking.ensure_experiment(
            client, config.tracking.experiment, config.tracking.artifact_root
        )
        choices = config.hydra.runtime.choices
        name = choices.get("experiment") or "sweep"
        sweep_params = {k: str(v) for k, v in (config.hydra.sweeper.get("params") or {}).items()}
        self.parent_run_id = tracking.start_parent(
            client,
            self.experiment_id,
            f"sweep-{name}",
            {
                "sweep": "true",
                "sweep_dir": str(Path(config.hydra.sweep.dir).resolve()),
                "sweep_overrides": json.dumps(list(config.hydra.overrides.task)),
                "sweep_params": json.dumps(sweep_params),
            },
        )
        _open[self.parent_run_id] = self
        print(
            f"MLflow parent run {self.parent_run_id} (experiment {self.experiment_id}) "
            f"in {self.tracking_uri}",
            flush=True,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.finalize()

    # --- each job, in whichever process runs it ------------------------------------

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        if self.parent_run_id is None:
            return  # a single run: no parent
        _current = SweepContext(
            self.tracking_uri, self.experiment_id, self.parent_run_id, int(config.hydra.job.num)
        )

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        global _current
        _current = None
        if self.parent_run_id is None:
            return
        exc = job_return._return_value if job_return.status != JobStatus.COMPLETED else None
        record_job(
            tracking.client_for(self.tracking_uri),
            self.parent_run_id,
            int(config.hydra.job.num),
            list(job_return.overrides or []),
            f"{type(exc).__name__}: {exc}" if exc is not None else None,
        )

    # --- closing the parent --------------------------------------------------------

    def finalize(self, interrupted: bool = False) -> Summary | None:
        """Summarise the children on the parent and end it; safe to call twice."""
        if self.parent_run_id not in _open:
            return None
        del _open[self.parent_run_id]
        client = tracking.client_for(self.tracking_uri)
        try:
            summary = collect(client, self.experiment_id, self.parent_run_id)
            log_summary(client, self.parent_run_id, summary, self.config)
            print(summary.text(), flush=True)
        except BaseException:
            tracking.end_run(client, self.parent_run_id, "FAILED")
            raise
        if interrupted:
            status = "KILLED"
        else:
            status = "FAILED" if summary.failed else "FINISHED"
        tracking.end_run(client, self.parent_run_id, status)
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


def record_job(
    client, parent_run_id: str, num: int, overrides: list[str], error: str | None
) -> None:
    """A job's outcome, as a tag on the sweep's parent."""
    record = {
        "num": num,
        "overrides": overrides,
        "status": "FAILED" if error else "COMPLETED",
        "error": error,
    }
    tracking.log_tags(client, parent_run_id, {f"{JOB_TAG}{num:04d}": json.dumps(record)[:5000]})


# --- the summary -----------------------------------------------------------------------

COLUMNS = [
    "job",
    "init",
    "optimizer",
    "learning_rate",
    "status",
    "training",
    "iterations",
    "final_loss",
    "final_wx",
    "final_wrec",
    "diverged",
    "run_id",
    "overrides",
    "error",
]


@dataclass
class Summary:
    rows: list[dict[str, Any]]
    paths: dict[str, np.ndarray]  # run id -> (n+1, 2) weights visited
    losses: dict[str, np.ndarray]  # run id -> loss per iteration
    best_learning_rate: float | None = None
    best_rate_median_loss: float | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] != "FINISHED"]

    def table(self) -> dict[str, list]:
        return {c: [r.get(c) for r in self.rows] for c in COLUMNS}

    def text(self) -> str:
        """The table for the console, then the verdict."""
        shown = COLUMNS[: COLUMNS.index("final_wrec") + 1]
        cells = [[_fmt(r.get(c)) for c in shown] for r in self.rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(shown)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        n_failed = len(self.failed)
        lines.append(
            f"{len(self.rows)} jobs, {n_failed} failed"
            + "".join(
                f"\n  job {r['job']} ({' '.join(r['overrides'] or [])}): "
                f"{r['error'] or r['status']}"
                for r in self.failed
            )
        )
        if self.best_learning_rate is not None:
            lines.append(
                f"Best learning rate: {self.best_learning_rate:g} (median final loss "
                f"{self.best_rate_median_loss:.4g} over its starts). Feed it back: "
                f"uv run rnnlab -m experiment=compare_starts "
                f"gd_learning_rate={self.best_learning_rate:g}"
            )
        return "\n".join(lines)


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


def collect(client, experiment_id: str, parent_run_id: str) -> Summary:
    """One row per job: its record on the parent joined with its child run."""
    parent = client.get_run(parent_run_id)
    records = {
        int(k[len(JOB_TAG) :]): json.loads(v)
        for k, v in parent.data.tags.items()
        if k.startswith(JOB_TAG)
    }
    children = {}
    for run in tracking.child_runs(client, experiment_id, parent_run_id):
        num = run.data.tags.get(SWEEP_JOB_TAG)
        children[int(num) if num is not None else -len(children) - 1] = run
    rows, paths, losses = [], {}, {}
    for num in sorted(set(records) | set(children)):
        record, run = records.get(num, {}), children.get(num)
        row: dict[str, Any] = {
            "job": num,
            "overrides": record.get("overrides"),
            "error": record.get("error"),
        }
        if run is None:
            row["status"] = "FAILED" if record.get("status") == "FAILED" else "NO RUN"
            rows.append(row)
            continue
        m, p, t = run.data.metrics, run.data.params, run.data.tags
        row.update(
            init=p.get("init.name"),
            optimizer=p.get("optimizer.name"),
            learning_rate=_num(p.get("optimizer.learning_rate")),
            status=run.info.status if record.get("status") != "FAILED" else "FAILED",
            training=t.get("status"),
            iterations=int(m["iterations"]) if "iterations" in m else None,
            final_loss=m.get("final_loss"),
            final_wx=m.get("final_wx"),
            final_wrec=m.get("final_wrec"),
            diverged=int(m["diverged"]) if "diverged" in m else None,
            run_id=run.info.run_id,
        )
        if row["error"] is None and run.info.status == "FAILED":
            row["error"] = t.get("error")
        rows.append(row)
        if "final_wx" in m:
            wx = tracking.metric_history(client, run.info.run_id, "wx")
            wrec = tracking.metric_history(client, run.info.run_id, "wrec")
            path = np.column_stack([wx, wrec]).reshape(-1, 2)
            paths[run.info.run_id] = np.vstack([path, [[m["final_wx"], m["final_wrec"]]]])
            losses[run.info.run_id] = tracking.metric_history(client, run.info.run_id, "loss")
    summary = Summary(rows=rows, paths=paths, losses=losses)
    _best_learning_rate(summary)
    return summary


def _best_learning_rate(summary: Summary) -> None:
    """Among gradient-descent jobs with several learning rates: the lowest median final
    loss over the starts (a diverged or failed start counts as infinitely bad)."""
    by_rate: dict[float, list[float]] = {}
    for r in summary.rows:
        if r.get("optimizer") == "gd" and r.get("learning_rate") is not None:
            ok = r["status"] == "FINISHED" and not r.get("diverged") and r.get("final_loss")
            by_rate.setdefault(r["learning_rate"], []).append(r["final_loss"] if ok else math.inf)
    if len(by_rate) < 2:
        return
    medians = {rate: float(np.median(v)) for rate, v in by_rate.items()}
    best = min(medians, key=lambda rate: (medians[rate], rate))
    if math.isfinite(medians[best]):
        summary.best_learning_rate, summary.best_rate_median_loss = best, medians[best]


def log_summary(client, parent_run_id: str, summary: Summary, config: dict[str, Any]) -> None:
    """The table (CSV and MLflow table), metrics, the verdict, and the comparison figures."""
    table = summary.table()
    buf = io.StringIO()
    import csv

    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for i in range(len(summary.rows)):
        writer.writerow([_csv(table[c][i]) for c in COLUMNS])
    tracking.log_text(client, parent_run_id, buf.getvalue(), "summary/summary.csv")
    tracking.log_table(
        client,
        parent_run_id,
        {c: [_csv(v) for v in table[c]] for c in COLUMNS},
        "summary/summary.json",
    )
    tracking.log_text(client, parent_run_id, summary.text(), "summary/summary.txt")
    n_failed = len(summary.failed)
    metrics = {
        "jobs": float(len(summary.rows)),
        "jobs_failed": float(n_failed),
        "jobs_diverged": float(sum(1 for r in summary.rows if r.get("diverged"))),
        "best_learning_rate": summary.best_learning_rate,
    }
    finals = [r["final_loss"] for r in summary.rows if r.get("final_loss") is not None]
    if finals:
        metrics["best_final_loss"] = float(min(finals))
    tracking.log_summary(client, parent_run_id, metrics)
    tags = {"failed_jobs": ", ".join(str(r["job"]) for r in summary.failed) or "none"}
    if summary.best_learning_rate is not None:
        tags["best_learning_rate"] = f"{summary.best_learning_rate:g}"
    tracking.log_tags(client, parent_run_id, tags)
    if summary.paths and config["plots"]["sweep_figures"]:
        _log_figures(client, parent_run_id, summary, config)


def _csv(v: Any) -> Any:
    return " ".join(v) if isinstance(v, list) else ("" if v is None else v)


def _log_figures(client, parent_run_id: str, summary: Summary, config: dict[str, Any]) -> None:
    d = config["data"]
    dataset = make_dataset(d["recipe"], d["n_samples"], d["seq_len"], d["seed"])
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    curves: dict[str, list[tuple[str, np.ndarray, bool]]] = {}
    for r in summary.rows:
        rid = r.get("run_id")
        if rid not in summary.paths:
            continue
        panel = _panel_name(r, summary)
        label = r["init"]
        groups.setdefault(panel, []).append((label, summary.paths[rid]))
        curves.setdefault(panel, []).append((label, summary.losses[rid], bool(r["diverged"])))
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


def _panel_name(row: dict[str, Any], summary: Summary) -> str:
    """One panel per optimiser; one per learning rate when several rates are swept."""
    if row["optimizer"] == "rprop":
        return "RProp"
    rates = {r.get("learning_rate") for r in summary.rows if r.get("optimizer") == "gd"}
    if len(rates) > 1:
        return f"gradient descent, lr={row['learning_rate']:g}"
    return f"gradient descent (lr={row['learning_rate']:g})"
