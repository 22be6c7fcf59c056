"""A sweep's summary, pure: its planned jobs joined with its children's results, as a
table, counts, the best run, and the text the console and the parent's description
show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnlab.config import RATE_KEYS
from rnnlab.store import ui

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
    searched: bool = False  # the sweeper decided the jobs (a search): jobs are its trials

    def history(self) -> tuple[np.ndarray, np.ndarray]:
        """A search's course, by job (trial) number: each job's final loss (NaN: failed,
        diverged or not started) and the best so far (NaN until a job has one)."""
        losses = np.array(
            [
                float(r["final_loss"])
                if r["status"] == "FINISHED"
                and r.get("training") != "diverged"
                and r.get("final_loss") is not None
                else np.nan
                for r in self.rows
            ]
        )
        best = np.fmin.accumulate(losses) if len(losses) else losses
        return losses, best

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
        widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(shown)]
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
        for r in self.retried:
            states, why = r.get("earlier") or ("KILLED", "retried")
            cause = (
                f"the earlier ended {states}; run again by rnnlab-rerun --resume"
                if why == "resumed"
                else "the earlier lost its worker and ended KILLED"
            )
            lines.append(
                f"  job {r['job']} ({' '.join(r['overrides'])}): {r['attempts']} attempts; {cause}"
            )
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


def as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
