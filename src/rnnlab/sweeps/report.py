"""A sweep's summary: its planned jobs joined with its child runs in the store, as a
table (CSV, an MLflow table, the console), metrics, tags and a description on the
parent run, the comparison figures, and the best run's model.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.config import OPTIMIZER_NAMES, RATE_KEYS
from rnnlab.jobs.results import scalars
from rnnlab.store import log, models
from rnnlab.sweeps.summary import Summary

# A sweep's comparison figures draw every child's path; past this many they would be
# unreadable (and reading every history would make the summary grow with the sweep).
MAX_FIGURE_RUNS = 64


def log_summary(
    client: Any, parent_run_id: str, summary: Summary, config: dict[str, Any], experiment_id: str
) -> None:
    """The table (CSV and MLflow table), metrics, tags, description, comparison figures
    and the best run's model, on the parent."""
    _log_table_and_verdict(client, parent_run_id, summary, config, experiment_id)
    if (summary.paths or summary.searched) and config["plots"]["sweep_figures"]:
        with tempfile.TemporaryDirectory(prefix="rnnlab-sweep-figures-") as tmp:
            draw_figures(summary, config, Path(tmp))
            log.log_files(client, parent_run_id, Path(tmp), "figures")


def _log_table_and_verdict(
    client, parent_run_id: str, summary: Summary, config: dict[str, Any], experiment_id: str
) -> None:
    table = summary.table()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(summary.columns)
    for i in range(len(summary.rows)):
        writer.writerow([_csv(table[c][i]) for c in summary.columns])
    client.log_text(parent_run_id, buf.getvalue(), "summary/summary.csv")
    log.log_table(
        client,
        parent_run_id,
        {c: [_csv(v) for v in table[c]] for c in summary.columns},
        "summary/summary.json",
    )
    client.log_text(parent_run_id, summary.text(), "summary/summary.txt")
    metrics = {
        "jobs": float(len(summary.rows)),
        "jobs_failed": float(len(summary.failed)),
        "jobs_killed": float(len(summary.killed)),
        "jobs_diverged": float(len(summary.diverged)),
        "jobs_not_started": float(len(summary.not_started)),
        "best_learning_rate": summary.best_learning_rate,
    }
    tags = {
        "failed_jobs": ", ".join(str(r["job"]) for r in summary.unfinished) or "none",
        log.NOTE_TAG: summary.description(experiment_id),
    }
    best = summary.best
    if best is not None:
        metrics["best_final_loss"] = float(best["final_loss"])
        tags.update(best_run_id=best["run_id"], best_run_name=best["run_name"])
        # the best job's swept (or searched) values: a search's best params
        tags.update({f"best.{k}": str(best[k]) for k in summary.swept if best.get(k) is not None})
        metrics["best_job"] = float(best["job"])
    if summary.best_learning_rate is not None:
        tags["best_learning_rate"] = f"{summary.best_learning_rate:g}"
    elif summary.best_rates:
        for name, (rate, _) in summary.best_rates.items():
            tags[f"best_learning_rate.{name}"] = f"{rate:g}"
            metrics[f"best_learning_rate_{name}"] = rate
    log.log_batch(client, parent_run_id, metrics=scalars(metrics), tags=tags)
    if best is not None and config["tracking"]["log_model"]:
        models.log_model(
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
    """Every run's path on the loss surface, and every loss curve, into ``folder``; a
    search's course over its trials (``optimisation_history``)."""
    from rnnlab import plots
    from rnnlab.jobs.compute import dataset_of

    dataset = dataset_of(config)
    groups: dict[str, list[tuple[str, np.ndarray, bool]]] = {}
    curves: dict[str, list[tuple[str, np.ndarray, np.ndarray, bool]]] = {}
    for r in summary.rows:
        rid = r.get("run_id")
        if rid not in summary.paths:
            continue
        panel = _panel_name(r, summary)
        label = _curve_label(r, summary)
        diverged = r.get("training") == "diverged"
        groups.setdefault(panel, []).append((label, summary.paths[rid], diverged))
        curves.setdefault(panel, []).append((label, *summary.losses[rid], diverged))
    p = config["plots"]
    figures = {}
    if groups:
        figures["sweep_trajectories"] = plots.sweep_trajectories(
            dataset.X, dataset.t, groups, p["overview"], p["resolution"]
        )
        figures["sweep_loss_curves"] = plots.sweep_loss_curves(curves)
    if summary.searched and summary.rows:
        figures["optimisation_history"] = plots.optimisation_history(
            *summary.history(), "final loss"
        )
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
