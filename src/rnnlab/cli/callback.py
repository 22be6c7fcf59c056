"""One multirun, one parent MLflow run: a Hydra callback (the summary is ``summary``).

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
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rnnlab import console
from rnnlab.config import (
    ConfigError,
    config_overrides,
    to_container,
    validate,
)
from rnnlab.proc import signals
from rnnlab.store import runs

if TYPE_CHECKING:
    from rnnlab.sweeps.summary import Summary
from rnnlab.cli.launchers import check_launcher, scrub_hydra_files, start_ray, warm_joblib_workers
from rnnlab.sweeps.plan import (
    Plan,
    SweepRefused,
    check_plan,
    name_parts,
    plan,
    shared_params,
    swept_prefixes,
)


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
_linked: MlflowSweepCallback | None = None  # a worker's sweep, its parent in the recorder


def current() -> SweepContext | None:
    """The sweep the running job belongs to (None outside a multirun)."""
    return _current


def linked() -> MlflowSweepCallback | None:
    """In a worker: its sweep, whose parent run the recorder opens (None otherwise)."""
    return _linked


def end_linked(interrupted: bool = False) -> bool:
    """In a worker: tell the recorder the sweep has ended (it summarises); False if this
    process started no such sweep (or has told it already)."""
    global _linked
    from rnnlab.cli import link

    if _linked is None:
        return False
    _linked = None
    link.LINK.send(("sweep-end", interrupted))
    return True


# --- the callback ---------------------------------------------------------------------


class MlflowSweepCallback(Callback):
    """A sweep's parent run, from Hydra's multirun callbacks: opened at the multirun's
    start, its jobs made its children, summarised and ended at its end (``finalize``).
    ``rnnlab-rerun`` and ``rnnlab-doctor`` use it too (``track_open``, ``resume``)."""

    @classmethod
    def resume(cls, client, parent, plan, config) -> MlflowSweepCallback:
        """A parent run left open (``parent``: an MLflow Run) taken over by this process,
        with its logged plan and config, so that ``finalize`` can summarise and end it."""
        cb = cls()
        cb.tracking_uri = client.tracking_uri
        cb.experiment_id, cb.parent_run_id = parent.info.experiment_id, parent.info.run_id
        cb.plan, cb.config = plan, config
        cb.track_open()
        return cb

    def track_open(self) -> None:
        """Count the parent among this process's open sweeps: ``finalize_open`` (an error,
        a signal, the interpreter's exit) ends it if nothing else does."""
        _open[self.parent_run_id] = self

    def untrack(self) -> None:
        """The parent is no longer this process's to end."""
        _open.pop(self.parent_run_id, None)

    def __init__(self) -> None:
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.config: dict[str, Any] | None = None
        self.plan: Plan | None = None
        self.launcher_pid = os.getpid()
        self.name = "sweep"  # the parent's name: `base #k extra` once it is open
        self.base, self.extra = "sweep", ""
        self.overrides: list[str] = []
        self.searchpath: list[str] = []  # the user's config folders, as one override
        self.sweep_dir = ""
        self.sweep_folder = None  # created.Created: the sweep's folder before Hydra made it

    # --- a single run -----------------------------------------------------------------

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before Hydra makes the run's folder: note what is there (``created``), so that
        a run refused later removes only what it made."""
        from rnnlab.proc import created

        try:
            folder = OmegaConf.select(config, "hydra.run.dir")
        except Exception:  # an interpolation only Hydra's job can resolve: note nothing
            return
        if folder:
            created.note(str(folder))

    # --- launching process ---------------------------------------------------------

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Plan and check the sweep, then open its parent (see the module's docstring). A
        mistake of the user's found here stops the sweep in one line (SweepRefused):
        Hydra would turn any other exception into a warning and run the jobs anyway."""
        from rnnlab.cli.errors import user_error
        from rnnlab.proc import created

        try:
            try:
                self._start(config)
            except Exception as exc:
                problem = user_error(exc)
                if problem is None:
                    raise
                raise SweepRefused(problem) from None
        except SweepRefused:
            created.remove(created.noted(str(config.hydra.sweep.dir)))  # the folder, if made
            raise

    def _start(self, config: DictConfig) -> None:
        from rnnlab.cli import link
        from rnnlab.proc import created

        # what Hydra will make of the sweep's folder: named if it cannot be made, taken
        # away again if the sweep is refused before its first job
        self.sweep_folder = created.note(str(config.hydra.sweep.dir))

        signals.install_signal_handlers()
        self.launcher_pid = os.getpid()
        self.plan = plan(config)
        swept = swept_prefixes(self.plan) if self.plan else ()
        if self.plan is not None:
            check_plan(self.plan, config)
        try:
            validate(config)
        except ConfigError as exc:
            if not any(exc.key == s or exc.key.startswith(s + ".") for s in swept):
                raise SweepRefused(str(exc)) from None
        self.config = to_container(config)
        check_launcher(config)
        warm_joblib_workers(config)
        start_ray(config)
        self.base, self.extra = name_parts(config, self.plan)
        self.name = self.base
        from rnnlab.config import missing_config_dirs, searchpath_override, user_config_dirs

        # the user's config folders, which every job (and a rerun of it) composes with
        folders = user_config_dirs(config.hydra.runtime.config_sources)
        missing = missing_config_dirs(folders)
        if missing:
            raise SweepRefused(missing)
        self.searchpath = searchpath_override(folders)
        self.overrides = [
            console.redact(o) for o in config_overrides(config.hydra.overrides.task)
        ] + self.searchpath
        self.sweep_dir = str(Path(config.hydra.sweep.dir).resolve())
        try:  # Hydra makes it next, and would stop with a traceback after the parent opened
            Path(self.sweep_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SweepRefused(
                f"cannot make the sweep folder {self.sweep_dir} (hydra.sweep.dir): {exc.strerror}"
            ) from None
        if link.LINK is not None:  # the launching process records: it opens the parent
            global _linked
            link.LINK.send(("sweep-start", self))
            _linked = self
            self.answered = False
            if self.plan is None:  # another sweeper: its jobs may start at once
                self.await_parent()
        else:
            self.open_parent()

    def await_parent(self) -> None:
        """In a worker: the recorder's answer to ``sweep-start`` (the parent's ids), read
        once, when the jobs need it: rnnlab's sweeper reads it after composing every job,
        so that the worker composes while the recorder starts."""
        from rnnlab.cli import link

        if getattr(self, "answered", True):
            return
        reply = link.LINK.recv()
        self.answered = True
        if reply[0] == "refused":
            from rnnlab.proc import created

            created.remove(self.sweep_folder)  # its folder and multirun.yaml: no sweep ran
            raise SweepRefused(reply[1])
        self.tracking_uri, self.experiment_id, self.parent_run_id = reply[1:]

    def open_parent(self) -> None:
        """The store side of the start: the store and the experiment, created once, and
        the parent run (shared params, swept keys, the plan as an artifact). Raises
        SweepRefused when the store cannot be used."""
        from rnnlab.store import client as client_mod
        from rnnlab.store import experiments, log, ui, uris

        t = self.config["tracking"]
        try:
            self.tracking_uri = uris.resolve_uri(t["uri"])
            client = client_mod.client_for(self.tracking_uri)  # creates a fresh store's schema
            self.experiment_id = experiments.ensure_experiment(
                client, t["experiment"], t["artifact_root"], t["description"]
            )
        except uris.StoreError as exc:
            raise SweepRefused(str(exc)) from None
        except Exception as exc:
            raise SweepRefused(f"cannot use the MLflow store: {uris.reason(exc)}") from None
        from rnnlab.store import orphans

        orphans.offer(client)
        params = shared_params(self.config, self.plan) if self.plan else {}
        self.parent_run_id = runs.start(
            client,
            self.experiment_id,
            self.name,
            {
                **log.source_tags(" ".join(["rnnlab", "-m", *self.overrides])),
                ui.SWEEP_TAG: "true",
                ui.NAME_TAG: self.base,
                "sweep_dir": self.sweep_dir,
                "sweep_overrides": json.dumps(self.overrides),
                log.NOTE_TAG: f"Sweep running: {self.jobs_text()}",
            },
            params=params,
        )
        self.track_open()
        self.name_parent(client)
        self._log_plan(client)
        console.say(
            f"Sweep {self.name}: {self.jobs_text()}; MLflow parent run {self.parent_run_id} "
            f"(experiment {self.experiment_id}) in {uris.redact(self.tracking_uri)}"
        )

    def name_parent(self, client) -> None:
        """Number the parent among its experiment's sweeps of the same name, and add the
        swept keys' columns to the experiment's results view (``ui``)."""
        from rnnlab.store import ui

        with runs.owning(client, self.parent_run_id, finish=False):
            self.name = ui.number_name(
                client, self.experiment_id, self.parent_run_id, self.base, self.extra
            )
            ui.save_results_view(client, self.experiment_id)

    def say_links(self, summary: Summary) -> None:
        """The sweep in the MLflow UI: its parent, its children compared, the results view."""
        from rnnlab.store import ui

        base = ui.base_url(self.tracking_uri, self.config["tracking"].get("ui_url"))
        children = [r["run_id"] for r in summary.rows if r.get("run_id")]
        for line in ui.sweep_lines(base, self.experiment_id, self.parent_run_id, children):
            console.say(line)

    def jobs_text(self) -> str:
        return f"{len(self.plan.jobs)} jobs" if self.plan else "jobs chosen by the sweeper"

    def _log_plan(self, client) -> None:
        """The job list (what a rerun of this sweep reruns) and the launching config."""
        from rnnlab.jobs.files import write_config
        from rnnlab.store import log

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if self.plan:
                (folder / "jobs.json").write_text(
                    json.dumps(
                        {
                            "swept": self.plan.swept,
                            "jobs": [
                                [console.redact(o) for o in [*job, *self.searchpath]]
                                for job in self.plan.jobs
                            ],
                        },
                        indent=1,
                    )
                )
            write_config(self.config, self.overrides, folder)
            log.log_files(client, self.parent_run_id, folder, "sweep")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not end_linked():
            self.finalize()

    # --- each job, in whichever process runs it ------------------------------------

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        scrub_hydra_files(config)
        if _linked is self:
            self.await_parent()
        if self.parent_run_id is None:
            return  # a single run: no parent
        if os.getpid() != self.launcher_pid:  # a worker process (joblib, Ray)
            signals.install_signal_handlers()
            console.quiet()
            if not getattr(MlflowSweepCallback, "_watching", False):
                signals.watch_parent()
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

    def finalize(self, interrupted: bool = False, quiet: bool = False) -> Summary | None:
        """Summarise the children on the parent and end it; safe to call twice. When the
        store fails, the parent's end waits in the journal (``quiet``: without saying so;
        the caller has)."""
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
