"""A sweep's parent run as a plain object, ``SweepParent``: what the sweep was started
from (its config, plan, name and folder) and the store side of its life. ``open`` makes
the store and the experiment once (a fresh store's migrations and experiment creation
race when several processes do them) and opens the parent with the shared config and the
swept keys as params and the job list as an artifact; ``start`` opens a rerun's parent;
``resume`` takes over one left open; ``finalize`` ends children left RUNNING, reads the
children back, gives the parent its summary (table, metrics, description, comparison
figures, the best run's model) and ends it FINISHED, FAILED or KILLED.

The Hydra callback (``cli.callback``), ``rnnlab-rerun`` and ``rnnlab-doctor`` use it
through these methods. It is picklable: the ``rnnlab`` command's worker sends it to the
recorder, which opens and ends the parent. Every parent this process opened and has not
ended is ended at the interpreter's exit (``finalize_open``)."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnlab import console
from rnnlab.proc import signals
from rnnlab.store import runs
from rnnlab.sweeps.plan import PLAN_FILE, Plan, SweepRefused, shared_params

if TYPE_CHECKING:
    from rnnlab.sweeps.summary import Summary


@dataclass
class SweepParent:
    """A sweep's parent run. ``config``: the launching config (plain containers);
    ``plan``: the jobs (None: another sweeper chooses them); ``base`` and ``extra``: its
    name around its number (``compare_starts #3 iterations=5``); ``overrides``: the
    command's, redacted, with ``searchpath`` (the user's config folders) at the end;
    ``sweep_dir``: its folder. The ids are set once it is open."""

    config: dict[str, Any]
    plan: Plan | None = None
    base: str = "sweep"
    extra: str = ""
    overrides: list[str] = field(default_factory=list)
    searchpath: list[str] = field(default_factory=list)
    sweep_dir: str = ""
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    name: str = "sweep"

    @classmethod
    def resume(cls, client, run, plan: Plan | None, config: dict[str, Any]) -> SweepParent:
        """A parent run left open (``run``: an MLflow Run) taken over by this process,
        with its logged plan and config, so that ``finalize`` can summarise and end it."""
        parent = cls(config=config, plan=plan, name=run.info.run_name)
        parent.tracking_uri = client.tracking_uri
        parent.experiment_id, parent.parent_run_id = run.info.experiment_id, run.info.run_id
        parent.track_open()
        return parent

    def jobs_text(self) -> str:
        if self.plan is None or self.plan.searched:
            return "jobs chosen by the sweeper"
        return f"{len(self.plan.jobs)} jobs"

    def open(self) -> None:
        """The store and the experiment, created once, and the parent run (shared params,
        swept keys, the plan as an artifact). Raises SweepRefused when the store cannot
        be used."""
        from rnnlab.store import client as client_mod
        from rnnlab.store import experiments, lineage, log, orphans, uris

        t = self.config["tracking"]
        try:
            self.tracking_uri = uris.resolve_uri(t["uri"])
            client = client_mod.client_for(self.tracking_uri)  # creates a fresh store's schema
            experiment_id = experiments.ensure_experiment(
                client, t["experiment"], t["artifact_root"], t["description"]
            )
        except uris.StoreError as exc:
            raise SweepRefused(str(exc)) from None
        except Exception as exc:
            raise SweepRefused(f"cannot use the MLflow store: {uris.reason(exc)}") from None
        orphans.offer(client)
        tags = {
            **lineage.source_tags(" ".join(["rnnlab", "-m", *self.overrides])),
            "sweep_dir": self.sweep_dir,
            "sweep_overrides": json.dumps(self.overrides),
            log.NOTE_TAG: f"Sweep running: {self.jobs_text()}",
        }
        params = shared_params(self.config, self.plan) if self.plan else {}
        self.start(client, experiment_id, tags, params)
        self.log_plan(client)
        console.say(
            f"Sweep {self.name}: {self.jobs_text()}; MLflow parent run {self.parent_run_id} "
            f"(experiment {self.experiment_id}) in {uris.redact(self.tracking_uri)}"
        )

    def start(
        self, client, experiment_id: str, tags: dict[str, str], params: dict[str, str]
    ) -> None:
        """Open the parent run in ``experiment_id`` (tagged a sweep, with ``tags`` and
        ``params``), owned by this process, numbered among its experiment's sweeps of
        the same name; the swept keys' columns join the experiment's results view."""
        from rnnlab.store import ui

        self.tracking_uri, self.experiment_id = client.tracking_uri, experiment_id
        self.parent_run_id = runs.start(
            client,
            experiment_id,
            self.base,
            {ui.SWEEP_TAG: "true", ui.NAME_TAG: self.base, **tags},
            params=params,
        )
        self.track_open()
        with runs.owning(client, self.parent_run_id, finish=False):
            self.name = ui.number_name(
                client, self.experiment_id, self.parent_run_id, self.base, self.extra
            )
            ui.save_results_view(client, self.experiment_id)

    def log_plan(self, client) -> None:
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
                plan = {"swept": self.plan.swept, "jobs": jobs}
                if self.plan.searched:  # the jobs it ran (once it has ended), its settings
                    plan.update(searched=True, sweeper=self.plan.sweeper)
                (folder / PLAN_FILE[1]).write_text(json.dumps(plan, indent=1))
            results = Path(self.sweep_dir) / "optimization_results.yaml"  # Optuna's, at its end
            if self.plan and self.plan.searched and self.sweep_dir and results.is_file():
                shutil.copy(results, folder / results.name)
            write_config(self.config, self.overrides, folder)
            log.log_files(client, self.parent_run_id, folder, PLAN_FILE[0])

    def track_open(self) -> None:
        """Count the parent among this process's open sweeps: ``finalize_open`` (an error,
        a signal, the interpreter's exit) ends it if nothing else does."""
        _open[self.parent_run_id] = self

    def untrack(self) -> None:
        """The parent is no longer this process's to end."""
        _open.pop(self.parent_run_id, None)

    def say_links(self, summary: Summary) -> None:
        """The sweep in the MLflow UI: its parent, its children compared, the results view."""
        from rnnlab.store import ui

        base = ui.base_url(self.tracking_uri, self.config["tracking"].get("ui_url"))
        children = [r["run_id"] for r in summary.rows if r.get("run_id")]
        for line in ui.sweep_lines(base, self.experiment_id, self.parent_run_id, children):
            console.say(line)

    def finalize(self, interrupted: bool = False, quiet: bool = False) -> Summary | None:
        """Summarise the children on the parent and end it; safe to call twice (None once
        it has ended). When the store fails, the parent's end waits in the journal
        (``quiet``: without saying so; the caller has)."""
        from rnnlab.store import client as client_mod
        from rnnlab.store import uris
        from rnnlab.sweeps import collect, report

        if self.parent_run_id not in _open:
            return None
        del _open[self.parent_run_id]
        client = client_mod.client_for(self.tracking_uri)
        # A signal during the summary does not cut it short: an interrupted summary is
        # still a summary (its table, metrics and figures), and the parent ends KILLED;
        # the signal takes effect once the parent has ended.
        with signals.shielded():
            try:
                collect.end_orphaned_children(client, self.experiment_id, self.parent_run_id)
                summary = collect.collect(client, self.experiment_id, self.parent_run_id, self.plan)
                if self.plan is not None and self.plan.searched and summary.rows:
                    # a search's plan is the jobs it ran: what a rerun or the doctor uses
                    self.plan = replace(self.plan, jobs=[r["overrides"] for r in summary.rows])
                    self.log_plan(client)
                report.log_summary(
                    client, self.parent_run_id, summary, self.config, self.experiment_id
                )
                console.say(summary.text())
                self.say_links(summary)
            except Exception as exc:
                killed = interrupted or signals.received() is not None
                why = f"{type(exc).__name__}: {uris.reason(exc)}"
                state = "KILLED" if killed else "FAILED"
                runs.end(client, self.parent_run_id, state, why, quiet=quiet)
                raise
            if interrupted or signals.received() is not None:
                status = "KILLED"
            else:
                status = "FAILED" if summary.failed or summary.not_started else "FINISHED"
            runs.end(client, self.parent_run_id, status)
        return summary


_open: dict[str, SweepParent] = {}  # parents this process opened and has not ended


def finalize_open(interrupted: bool = False) -> list[Summary]:
    """End every parent this process opened and has not ended (the fallback of an error
    or a signal); their summaries."""
    return [s for p in list(_open.values()) if (s := p.finalize(interrupted)) is not None]


@atexit.register
def _end_at_exit() -> None:
    for parent in list(_open.values()):
        try:
            parent.finalize(interrupted=True)
        except Exception:  # the store may be gone at exit; nothing more can be done
            pass
