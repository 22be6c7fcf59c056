"""A sweep's summary from the store: its children read back and joined with its plan;
children left RUNNING ended.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from rnnlab.config import RATE_KEYS
from rnnlab.config.params import as_number
from rnnlab.store import log, query
from rnnlab.store import runs as runs_mod
from rnnlab.sweeps.plan import SWEEP_JOB_TAG, Plan, source_overrides, sweep_job
from rnnlab.sweeps.report import MAX_FIGURE_RUNS
from rnnlab.sweeps.summary import NOT_STARTED, Summary


def end_orphaned_children(client, experiment_id: str, parent_run_id: str, wait: float = 5.0):
    """Children still RUNNING when the sweep ends: wait a little for their processes to
    end them (a worker marking its run KILLED), then end the rest KILLED."""
    deadline = time.monotonic() + wait
    while True:
        running = query.search(
            client,
            [experiment_id],
            f"tags.`{log.PARENT_TAG}` = '{parent_run_id}' and attributes.status = 'RUNNING'",
        )
        alive = [r for r in running if runs_mod.owner_alive(r.data.tags)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for r in running:
        owner = r.data.tags.get(runs_mod.PID_TAG, "?")
        why = f"the sweep ended with this job still running (pid {owner})"
        runs_mod.end(client, r.info.run_id, "KILLED", why)


def collect(client, experiment_id: str, parent_run_id: str, p: Plan | None) -> Summary:
    """One row per planned job (and per child the plan did not name): its child run's
    outcome, or NOT STARTED."""
    attempts: dict[int, list[Any]] = {}
    for run in query.child_runs(client, experiment_id, parent_run_id):
        num = as_number(run.data.tags.get(SWEEP_JOB_TAG))
        attempts.setdefault(int(num) if num is not None else -len(attempts) - 1, []).append(run)
    # A job run more than once (Ray retries a task whose node or worker died): its
    # finished attempt, else its latest one, stands for it.
    children = {
        num: max(runs, key=lambda r: (r.info.status == "FINISHED", r.info.start_time or 0))
        for num, runs in attempts.items()
    }
    jobs = dict(enumerate(p.jobs)) if p else {}
    swept = list(p.swept) if p else []
    rows = []
    for num in sorted(set(jobs) | set(children)):
        run = children.get(num)
        overrides = jobs.get(num) or (
            source_overrides(run.data.tags.get("mlflow.source.name", "")) if run else []
        )
        values = sweep_job(num, overrides, p).swept  # the swept keys' values
        row: dict[str, Any] = {"job": num, "overrides": overrides}
        row.update({k: values.get(k) for k in swept})
        row["attempts"] = len(attempts.get(num, []))
        earlier = [r.info.status for r in attempts.get(num, []) if r is not run]
        if earlier:  # why it ran again: a resume (rnnlab-rerun --resume), else a retry
            resumed = run is not None and run.data.tags.get("resumed") == "true"
            row["earlier"] = (", ".join(earlier), "resumed" if resumed else "retried")
        if run is None:
            row.update(status=NOT_STARTED, error=None)
            rows.append(row)
            continue
        m, prm, t = run.data.metrics, run.data.params, run.data.tags
        row.update(
            init=prm.get("init.name"),
            optimizer=t.get("optimizer") or prm.get("optimizer.name"),
            learning_rate=as_number(prm.get("optimizer.learning_rate")),
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
            error=t.get(runs_mod.ERROR_TAG) if run.info.status != "FINISHED" else None,
        )
        for k in swept:  # a child the plan did not name: its swept values from its params
            if row.get(k) is None:
                row[k] = prm.get(f"{k}.name", prm.get(k))
        rows.append(row)
    summary = Summary(rows=rows, swept=swept, searched=bool(p and p.searched))
    drawn = [r for r in rows if r.get("run_id")]
    if len(drawn) <= MAX_FIGURE_RUNS:
        for r in drawn:
            rid = r["run_id"]
            wx = query.metric_history(client, rid, "wx")
            wrec = query.metric_history(client, rid, "wrec")
            if len(wx) and len(wx) == len(wrec):  # a job stopped before its history: none
                summary.paths[rid] = np.column_stack([wx, wrec])
                summary.losses[rid] = query.metric_series(client, rid, "loss")
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
