"""A sweep's summary: its planned jobs joined with its child runs in the store, as a
table (CSV, an MLflow table, the console), metrics, tags and a description on the
parent run, the comparison figures, and the best run's model."""

from __future__ import annotations

import csv
import io
import math
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import lifecycle, tracking, ui
from rnnlab.config import OPTIMIZER_NAMES, RATE_KEYS
from rnnlab.sweep import SWEEP_JOB_TAG, Plan

# A sweep's comparison figures draw every child's path; past this many they would be
# unreadable (and reading every history would make the summary grow with the sweep).
MAX_FIGURE_RUNS = 64


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
    "valley_at",
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
    # optimizer -> (its best learning rate, the median final loss over the starts there)
    best_rates: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def best_learning_rate(self) -> float | None:
        """Gradient descent's best rate, where the sweep tuned gradient descent alone."""
        return self.best_rates["gd"][0] if list(self.best_rates) == ["gd"] else None

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
    def retried(self) -> list[dict[str, Any]]:
        """Jobs run more than once (a Ray node or worker lost mid-job, the task retried)."""
        return [r for r in self.rows if r.get("attempts", 0) > 1]

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
        if self.retried:
            parts.append(f"{len(self.retried)} retried")
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
        lines += [
            f"  job {r['job']} ({' '.join(r['overrides'])}): {r['attempts']} attempts; the "
            "earlier lost its worker and ended KILLED"
            for r in self.retried
        ]
        best = self.best
        if best is not None:
            name = best["run_name"]  # "#11 gd-vanish": it names its job
            job = "" if str(name).startswith("#") else f" (job {best['job']})"
            lines.append(
                f"Best: {name}{job}, final loss {best['final_loss']:.6g}; run {best['run_id']}"
            )
        if self.best_learning_rate is not None:
            lines.append(
                f"Best learning rate: {self.best_learning_rate:g} (median final loss "
                f"{self.best_rates['gd'][1]:.4g} over its starts). Feed it back: "
                f"uv run rnnlab -m experiment=compare_starts "
                f"gd_learning_rate={self.best_learning_rate:g}"
            )
        elif self.best_rates:
            lines.append("Best learning rates (median final loss over the starts):")
            lines += [
                f"  {name}: {rate:g} ({median:.4g})"
                for name, (rate, median) in self.best_rates.items()
            ]
            lines.append(
                "Feed them back: uv run rnnlab -m experiment=compare_optimizers "
                + self.rate_overrides()
            )
        return "\n".join(lines)

    def rate_overrides(self) -> str:
        """The best rates as the top-level overrides that set them."""
        return " ".join(
            f"{RATE_KEYS[name]}={rate:g}" for name, (rate, _) in self.best_rates.items()
        )

    def description(self, experiment_id: str) -> str:
        """The parent's description (markdown): counts, the best run, what went wrong."""

        def names(rows: list[dict[str, Any]]) -> str:
            return ", ".join(r.get("run_name") or f"job {r['job']}" for r in rows) or "none"

        lines = [f"**{self.counts()}.**"]
        best = self.best
        if best is not None:
            url = ui.run_route(experiment_id, best["run_id"])
            lines.append(f"Best: [{best['run_name']}]({url}), final loss {best['final_loss']:.4g}.")
        lines.append(f"Diverged: {names(self.diverged)}.")
        lines.append(f"Failed: {names(self.failed)}.")
        if self.not_started:
            lines.append(f"Not started: {names(self.not_started)}.")
        if self.retried:
            lines.append(
                f"Retried (an attempt lost its worker or node and ended KILLED): "
                f"{names(self.retried)}."
            )
        if self.best_learning_rate is not None:
            lines.append(f"Best learning rate: {self.best_learning_rate:g}.")
        elif self.best_rates:
            lines.append(f"Best learning rates: {self.rate_overrides()}.")
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


def collect(client, experiment_id: str, parent_run_id: str, p: Plan | None) -> Summary:
    """One row per planned job (and per child the plan did not name): its child run's
    outcome, or NOT STARTED."""
    attempts: dict[int, list[Any]] = {}
    for run in tracking.child_runs(client, experiment_id, parent_run_id):
        num = _num(run.data.tags.get(SWEEP_JOB_TAG))
        attempts.setdefault(int(num) if num is not None else -len(attempts) - 1, []).append(run)
    # A job run more than once (Ray retries a task whose node or worker died): its
    # finished attempt, else its latest one, stands for it.
    children = {
        num: max(runs, key=lambda r: (r.info.status == "FINISHED", r.info.start_time or 0))
        for num, runs in attempts.items()
    }
    jobs = dict(enumerate(p.jobs)) if p else {}
    from rnnlab.runner import SweepJob

    swept = list(p.swept) if p else []
    rows = []
    for num in sorted(set(jobs) | set(children)):
        run = children.get(num)
        overrides = jobs.get(num) or (
            run.data.tags.get("mlflow.source.name", "").split()[1:] if run else []
        )
        values = SweepJob.of(num, overrides, swept).swept  # the swept keys' values
        row: dict[str, Any] = {"job": num, "overrides": overrides}
        row.update({k: values.get(k) for k in swept})
        row["attempts"] = len(attempts.get(num, []))
        if run is None:
            row.update(status=NOT_STARTED, error=None)
            rows.append(row)
            continue
        m, prm, t = run.data.metrics, run.data.params, run.data.tags
        row.update(
            init=prm.get("init.name"),
            optimizer=t.get("optimizer") or prm.get("optimizer.name"),
            learning_rate=_num(prm.get("optimizer.learning_rate")),
            status=run.info.status,
            training=t.get("status"),
            iterations=int(m["iterations"]) if "iterations" in m else None,
            valley_at=int(m["valley_at"]) if "valley_at" in m else None,
            diverged_at=int(m["diverged_at"]) if "diverged_at" in m else None,
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
    drawn = [r for r in rows if r.get("run_id")]
    if len(drawn) <= MAX_FIGURE_RUNS:
        for r in drawn:
            rid = r["run_id"]
            wx = tracking.metric_history(client, rid, "wx")
            wrec = tracking.metric_history(client, rid, "wrec")
            if len(wx) and len(wx) == len(wrec):  # a job stopped before its history: none
                summary.paths[rid] = np.column_stack([wx, wrec])
                summary.losses[rid] = tracking.metric_history(client, rid, "loss")
    _best_learning_rate(summary)
    return summary


def _best_learning_rate(summary: Summary) -> None:
    """Per optimizer swept over several learning rates: the rate with the lowest median
    final loss over the starts (a diverged or failed start counts as infinitely bad)."""
    by_rate: dict[str, dict[float, list[float]]] = {}
    for r in summary.rows:
        if r.get("optimizer") in RATE_KEYS and r.get("learning_rate") is not None:
            ok = r["status"] == "FINISHED" and r.get("training") != "diverged"
            loss = r.get("final_loss")
            by_rate.setdefault(r["optimizer"], {}).setdefault(r["learning_rate"], []).append(
                loss if ok and loss is not None else math.inf
            )
    for name, rates in by_rate.items():
        if len(rates) < 2:
            continue
        medians = {rate: float(np.median(v)) for rate, v in rates.items()}
        best = min(medians, key=lambda rate: (medians[rate], rate))
        if math.isfinite(medians[best]):
            summary.best_rates[name] = (best, medians[best])


def log_summary(
    client, parent_run_id: str, summary: Summary, config: dict[str, Any], experiment_id: str
) -> None:
    """The table (CSV and MLflow table), metrics, tags, description, comparison figures
    (drawn in a forked child while the rest is logged, where enabled), and the best
    run's model."""
    from rnnlab.forked import Forked

    figures, drawn = None, None
    if summary.paths and config["plots"]["sweep_figures"]:
        figures = Path(tempfile.mkdtemp(prefix="rnnlab-sweep-figures-"))
        drawn = Forked(draw_figures, summary, config, figures)
    try:
        _log_table_and_verdict(client, parent_run_id, summary, config, experiment_id)
        if drawn is not None:
            drawn.wait()
            tracking.log_files(client, parent_run_id, figures, "figures")
    finally:
        if drawn is not None:
            drawn.cancel()
            shutil.rmtree(figures, ignore_errors=True)


def _log_table_and_verdict(
    client, parent_run_id: str, summary: Summary, config: dict[str, Any], experiment_id: str
) -> None:
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
    elif summary.best_rates:
        for name, (rate, _) in summary.best_rates.items():
            tags[f"best_learning_rate.{name}"] = f"{rate:g}"
            metrics[f"best_learning_rate_{name}"] = rate
    tracking.log_batch(client, parent_run_id, metrics=tracking.scalars(metrics), tags=tags)
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


def draw_figures(summary: Summary, config: dict[str, Any], folder: Path) -> None:
    """Every run's path on the loss surface, and every loss curve, into ``folder``."""
    from rnnlab import plots
    from rnnlab.runner import dataset_of

    dataset = dataset_of(config)
    groups: dict[str, list[tuple[str, np.ndarray, bool]]] = {}
    curves: dict[str, list[tuple[str, np.ndarray, bool]]] = {}
    for r in summary.rows:
        rid = r.get("run_id")
        if rid not in summary.paths:
            continue
        panel = _panel_name(r, summary)
        label = _curve_label(r, summary)
        diverged = r.get("training") == "diverged"
        groups.setdefault(panel, []).append((label, summary.paths[rid], diverged))
        curves.setdefault(panel, []).append((label, summary.losses[rid], diverged))
    p = config["plots"]
    figures = {
        "sweep_trajectories": plots.sweep_trajectories(
            dataset.X, dataset.t, groups, p["overview"], p["resolution"]
        ),
        "sweep_loss_curves": plots.sweep_loss_curves(curves),
    }
    matrix = _valley_cells(summary)
    if matrix is not None:
        rows, columns, cells = matrix
        figures["valley_matrix"] = plots.valley_matrix(
            rows, columns, cells, config["iterations"], config["valley_loss"]
        )
    for name, fig in figures.items():
        plots.save(fig, folder / f"{name}.{p['format']}", p["format"], p["dpi"])


def _valley_cells(summary: Summary):
    """(optimisers, starts, cells) for the valley matrix, where the sweep crossed
    optimisers with starts (one run per pair); else None."""
    rows: list[str] = []
    columns: list[str] = []
    cells: dict[tuple[str, str], tuple[str, float | None]] = {}
    for r in summary.rows:
        if r.get("optimizer") is None or r.get("init") is None:
            continue
        row, column = _panel_name(r, summary), str(r["init"])
        if (row, column) in cells:
            return None  # more than one run per pair: not a matrix
        rows += [row] if row not in rows else []
        columns += [column] if column not in columns else []
        if r["status"] != "FINISHED":
            cells[row, column] = ("failed", None)
        elif r.get("training") == "diverged":
            cells[row, column] = ("diverged", r.get("diverged_at"))
        elif r.get("valley_at") is not None:
            cells[row, column] = ("valley", r["valley_at"])
        else:
            cells[row, column] = ("never", r.get("final_loss"))
    if len(rows) < 2 or len(columns) < 2:
        return None
    return rows, columns, cells


PANEL_KEYS = (
    "optimizer",
    "optimizer.name",
    "optimizer.learning_rate",
    *RATE_KEYS.values(),
)


def _panel_name(row: Mapping[str, Any], summary: Summary) -> str:
    """One panel per optimiser; one per learning rate when several rates are swept."""
    name = row["optimizer"]
    label = OPTIMIZER_NAMES.get(name, str(name))
    if name not in RATE_KEYS or row.get("learning_rate") is None:
        return label
    rates = {r.get("learning_rate") for r in summary.rows if r.get("optimizer") == name}
    if len(rates) > 1:
        return f"{label}, lr={row['learning_rate']:g}"
    return f"{label} (lr={row['learning_rate']:g})"


def _curve_label(row: Mapping[str, Any], summary: Summary) -> str:
    """The swept values that tell a panel's curves apart (the start, by default)."""
    values = [str(row.get(k)) for k in summary.swept if k not in PANEL_KEYS]
    return ", ".join(values) if values else str(row.get("init"))
