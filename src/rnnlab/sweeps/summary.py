"""A sweep's summary, pure: its planned jobs joined with its children's results, as a
table, counts, the best run, and the text the console and the parent's description
show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnlab.config import RATE_KEYS
from rnnlab.config.params import shown
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
    # run id -> (the iteration of each logged point, the loss there)
    losses: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # optimizer -> (its best learning rate, the median final loss over the starts there)
    best_rates: dict[str, tuple[float, float]] = field(default_factory=dict)
    searched: bool = False  # the sweeper decided the jobs (a search): jobs are its trials
    interrupted: bool = False  # a signal stopped the sweep: its verdict is not final
    parent_run_id: str = ""

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
        return [r for r in self.rows if r["status"] not in ("FINISHED", "KILLED", NOT_STARTED)]

    @property
    def killed(self) -> list[dict[str, Any]]:
        """Jobs stopped from outside (a signal, their worker lost), not by their own error."""
        return [r for r in self.rows if r["status"] == "KILLED"]

    @property
    def unfinished(self) -> list[dict[str, Any]]:
        """Jobs that started and did not finish: failed or killed."""
        return [*self.failed, *self.killed]

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
        if self.killed:
            parts.append(f"{len(self.killed)} killed")
        if self.not_started:
            parts.append(f"{len(self.not_started)} not started")
        if self.retried:
            parts.append(f"{len(self.retried)} retried")
        return ", ".join(parts)

    def text(self) -> str:
        """The table for the console, then the verdict."""
        shown = self.columns[: self.columns.index("final_wrec") + 1]
        cells = [[_cell(r, c) for c in shown] for r in self.rows]
        widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(shown)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip()]
        lines += [
            "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            for row in cells
        ]
        lines.append(self.counts())
        lines += [
            f"  job {r['job']} ({' '.join(r['overrides'])}): {r['error'] or r['status']}"
            for r in self.unfinished
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
                f"Best learning rate{self._so_far}: {self.best_learning_rate:g} (median final "
                f"loss {self.best_rates['gd'][1]:.4g} over its starts)"
                + self._feed_back(
                    "it", f"compare_starts gd_learning_rate={self.best_learning_rate:g}"
                )
            )
        elif self.best_rates:
            lines.append(f"Best learning rates{self._so_far} (median final loss over the starts):")
            lines += [
                f"  {name}: {rate:g} ({median:.4g})"
                for name, (rate, median) in self.best_rates.items()
            ]
            lines.append(
                self._feed_back("them", f"compare_optimizers {self.rate_overrides()}").lstrip(". ")
            )
        return "\n".join(lines)

    @property
    def _so_far(self) -> str:
        return " so far" if self.interrupted else ""

    def _feed_back(self, pronoun: str, command: str) -> str:
        """Where the verdict is final, the command that uses it (``experiment=`` and
        ``command``); where the sweep was interrupted, that it is not."""
        if self.interrupted:
            return (
                ". The sweep was interrupted: this is from the jobs that finished; "
                f"rnnlab-rerun {self.parent_run_id or 'PARENT_RUN_ID'} --resume runs the rest"
            )
        return f". Feed {pronoun} back: uv run rnnlab -m experiment={command}"

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
        if self.killed:
            lines.append(f"Killed: {names(self.killed)}.")
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


def _cell(row: dict[str, Any], column: str) -> str:
    """A cell of the console's table; a diverged job's training cell says where, as its
    line does (its ``iterations`` are the updates kept: one fewer)."""
    if column == "training" and row.get("training") == "diverged" and row.get("diverged_at"):
        return f"diverged at {row['diverged_at']}"
    return _fmt(row.get(column))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return shown(v, 6)  # a swept value as the command wrote it, or a float range made it
