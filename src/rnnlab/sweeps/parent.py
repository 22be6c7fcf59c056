"""A sweep's parent run as a plain, picklable object: ``open`` (store, experiment and parent
created once), ``start`` (a rerun's), ``resume`` (one left open), ``finalize`` (children
read back from the store, the summary logged, the parent ended)."""

from __future__ import annotations

import itertools
import json
import math
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnlab import console
from rnnlab.config.params import as_number, shown
from rnnlab.errors import StoreError, SweepRefused
from rnnlab.proc import signals
from rnnlab.proc.created import Created
from rnnlab.store import runs
from rnnlab.sweeps.plan import PLAN_FILE, Plan, shared_params

if TYPE_CHECKING:
    from rnnlab.sweeps.summary import Summary

_keys = itertools.count()


@dataclass
class SweepParent:
    """A sweep's parent run. ``config``: the launching config (plain containers);
    ``plan``: the jobs (a search: its space, its jobs once it has ended); ``base`` and
    ``extra``: its name around its number (``compare_starts #3 iterations=5``);
    ``overrides``: the command's, redacted, with ``searchpath`` (the user's config folders)
    at the end; ``hydra_overrides``: the command's of Hydra's own keys (``hydra/launcher=``,
    ``hydra.sweeper.n_trials=``), which its Source needs to run the same sweep again;
    ``sweep_dir``: its folder, as it was before the sweep (``created``). The
    ids are set once it is open."""

    config: dict[str, Any]
    plan: Plan | None = None
    base: str = "sweep"
    extra: str = ""
    overrides: list[str] = field(default_factory=list)
    hydra_overrides: list[str] = field(default_factory=list)  # of hydra.*: in its Source
    searchpath: list[str] = field(default_factory=list)
    sweep_dir: str = ""
    created: Created | None = None
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    name: str = "sweep"
    key: str = field(default_factory=lambda: f"sweep-{os.getpid()}-{next(_keys)}")

    @classmethod
    def resume(
        cls, client: Any, run: Any, plan: Plan | None, config: dict[str, Any]
    ) -> SweepParent:
        """A parent run left open (``run``: an MLflow Run), with its logged plan and config,
        so that ``finalize`` can summarise and end it."""
        parent = cls(config=config, plan=plan, name=run.info.run_name)
        parent.tracking_uri = client.tracking_uri
        parent.experiment_id, parent.parent_run_id = run.info.experiment_id, run.info.run_id
        return parent

    def jobs_text(self) -> str:
        if self.plan is None or self.plan.searched:
            return "jobs chosen by the sweeper"
        return jobs_text(len(self.plan.jobs), self.plan.swept)

    def open(self) -> None:
        """The store and the experiment, created once, and the parent run (shared params,
        swept keys, the plan as an artifact), said by ``opened_line``. Raises SweepRefused
        when the store cannot be used."""
        from rnnlab.store import client as client_mod
        from rnnlab.store import experiments, lineage, log, orphans, uris

        t = self.config["tracking"]
        try:
            self.tracking_uri = uris.resolve_uri(t["uri"])
            client = client_mod.client_for(self.tracking_uri)  # creates a fresh store's schema
            experiment_id = experiments.ensure_experiment(
                client, t["experiment"], t["artifact_root"], t["description"]
            )
        except Exception as exc:  # (its folder goes in the sweep's process, which writes it)
            why = str(exc) if isinstance(exc, StoreError) else uris.reason(exc)
            prefix = "" if isinstance(exc, StoreError) else "cannot use the MLflow store: "
            raise SweepRefused(prefix + why) from None
        orphans.offer(client)
        tags = {
            **lineage.source_tags(
                shlex.join(["rnnlab", "-m", *self.overrides, *self.hydra_overrides])
            ),
            "sweep_dir": self.sweep_dir,
            "sweep_overrides": json.dumps(self.overrides),
            log.NOTE_TAG: f"Sweep running: {self.jobs_text()}",
        }
        self.start(
            client, experiment_id, tags, shared_params(self.config, self.plan) if self.plan else {}
        )
        self.log_plan(client)

    def opened_line(self) -> str:
        """What the console says of the sweep once its first job starts (a sweep refused
        before then says only why)."""
        from rnnlab.store import uris

        return (
            f"Sweep {self.name}: {self.jobs_text()}; MLflow parent run {self.parent_run_id} "
            f"(experiment {self.experiment_id}) in {uris.redact(str(self.tracking_uri))}"
        )

    def start(
        self, client: Any, experiment_id: str, tags: dict[str, str], params: dict[str, str]
    ) -> None:
        """Open the parent run in ``experiment_id`` (tagged a sweep, with ``tags`` and
        ``params``), owned by this process, numbered among its experiment's sweeps of the
        same name; the swept keys' columns join the experiment's results view."""
        from rnnlab.store import ui

        self.tracking_uri, self.experiment_id = client.tracking_uri, experiment_id
        self.parent_run_id = runs.start(
            client,
            experiment_id,
            self.base,
            {ui.SWEEP_TAG: "true", ui.NAME_TAG: self.base, **tags},
            params=params,
        )
        try:
            self.name = ui.number_name(
                client, experiment_id, self.parent_run_id, self.base, self.extra
            )
            ui.save_results_view(client, experiment_id)
        except Exception as exc:
            runs.end(client, self.parent_run_id, "FAILED", f"{type(exc).__name__}: {exc}")
            raise

    def log_plan(self, client: Any) -> None:
        """The job list (what a rerun of this sweep reruns) and the launching config."""
        from rnnlab.jobs.files import write_config
        from rnnlab.store import log

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if self.plan:
                # a grid's jobs get the user's config folders; a search's jobs are those
                # its children ran, which name the folders already
                folders = [] if self.plan.searched else self.searchpath
                jobs = [[console.redact(o) for o in [*job, *folders]] for job in self.plan.jobs]
                plan: dict[str, Any] = {"swept": self.plan.swept, "jobs": jobs}
                if self.plan.searched:  # the jobs it ran (once it has ended), its settings
                    plan.update(searched=True, sweeper=self.plan.sweeper)
                (folder / PLAN_FILE[1]).write_text(json.dumps(plan, indent=1), encoding="utf-8")
            results = Path(self.sweep_dir) / "optimization_results.yaml"  # Optuna's, at its end
            if self.plan and self.plan.searched and self.sweep_dir and results.is_file():
                shutil.copy(results, folder / results.name)
            write_config(self.config, self.overrides, folder)
            log.log_files(client, str(self.parent_run_id), folder, PLAN_FILE[0])

    def say_links(self, summary: Summary) -> None:
        """The sweep in the MLflow UI: its parent, its children compared, the results view."""
        from rnnlab.store import ui

        base = ui.base_url(str(self.tracking_uri), self.config["tracking"].get("ui_url"))
        children = [r["run_id"] for r in summary.rows if r.get("run_id")]
        for line in ui.sweep_lines(
            base, str(self.experiment_id), str(self.parent_run_id), children
        ):
            console.say(line)

    def finalize(self, interrupted: bool = False, error: str | None = None) -> Summary | None:
        """Summarise the children on the parent and end it: KILLED if ``interrupted``,
        FAILED with ``error`` (what stopped the sweep), else FINISHED or FAILED by its jobs.
        None where the summary could not be made (the parent then ends KILLED or FAILED
        with the reason, or waits in the journal)."""
        from rnnlab.store import client as client_mod
        from rnnlab.store import uris
        from rnnlab.sweeps import collect, report

        client = client_mod.client_for(str(self.tracking_uri))
        parent_id, experiment_id = str(self.parent_run_id), str(self.experiment_id)
        try:
            collect.end_orphaned_children(client, experiment_id, parent_id)
            summary = collect.collect(client, experiment_id, parent_id, self.plan)
            if self.plan is not None and self.plan.searched and summary.rows:
                # a search's plan is the jobs it ran: what a rerun or the doctor uses
                self.plan = replace(self.plan, jobs=[r["overrides"] for r in summary.rows])
                self.log_plan(client)
            summary.interrupted = interrupted or signals.received() is not None
            summary.parent_run_id = parent_id
            report.log_summary(client, parent_id, summary, self.config, experiment_id)
            if not (error and len(summary.not_started) == len(summary.rows)):
                console.say(summary.text())  # (stopped before any job: the error's line only)
                self.say_links(summary)
        except Exception as exc:
            why = f"{type(exc).__name__}: {uris.reason(exc)}"
            runs.end(client, parent_id, "KILLED" if interrupted else "FAILED", why)
            if uris.is_store_error(exc):
                return None
            raise
        if interrupted or signals.received() is not None:  # (a signal during the summary too)
            status = "KILLED"
        else:
            unfinished = summary.unfinished or summary.not_started
            status = "FAILED" if error or unfinished else "FINISHED"
        # what stopped the sweep, where no job's own failure tells it
        runs.end(client, parent_id, status, None if interrupted or summary.unfinished else error)
        return summary


def jobs_text(jobs: int, swept: dict[str, list[str]]) -> str:
    """``242 jobs = init.wx 11 (-3 ... 3) x init.wrec 11 (-3 ... 3) x optimizer 2``: a grid
    over a numeric range says what it runs before it runs (a float range's end is often
    in it: Hydra's ``range(-3,3,0.6)`` reaches 2.9999999999999996, read 3); other grids,
    and grids whose job count is not that product, say ``N jobs``."""

    ranges = {
        k for k, vs in swept.items() if len(vs) > 3 and all(as_number(v) is not None for v in vs)
    }
    if not ranges or math.prod(len(v) for v in swept.values()) != jobs:
        return f"{jobs} jobs"
    return f"{jobs} jobs = " + " x ".join(
        f"{k} {len(v)} ({shown(v[0])} ... {shown(v[-1])})" if k in ranges else f"{k} {len(v)}"
        for k, v in swept.items()
    )
