"""The sweep's Hydra callback, a thin adapter: Hydra's multirun hooks in, one parent
MLflow run (``sweeps.parent.SweepParent``) out.

``on_multirun_start`` runs in the launching process. It plans the sweep (the job list
Hydra's basic sweeper will run, from the same overrides), checks it (a task that cannot
be swept, an option that does not exist, a store that does not answer: one line, exit 2,
nothing created), starts the launcher's workers, and has the parent opened: here, or, in
the ``rnnlab`` command's worker, by the recorder (the parent travels over the link).
Hydra pickles the callback into every worker (joblib, Ray), where ``on_job_start``
publishes the parent to the job (``current()``), so each job's run becomes a child
(``mlflow.parentRunId``, tag ``sweep_job``) in the parent's experiment.
``on_multirun_end`` has the parent summarised and ended (``SweepParent.finalize``); the
CLI does it on an error or a signal (Hydra 1.3 skips ``on_multirun_end`` when a job
raises).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rnnlab import console
from rnnlab.config import (
    ConfigError,
    config_overrides,
    missing_config_dirs,
    searchpath_override,
    to_container,
    user_config_dirs,
    validate,
)
from rnnlab.proc import signals

if TYPE_CHECKING:
    pass
from rnnlab.cli.launchers import check_launcher, scrub_hydra_files, start_ray, warm_joblib_workers
from rnnlab.sweeps.parent import SweepParent
from rnnlab.sweeps.plan import (
    SweepRefused,
    check_plan,
    name_parts,
    plan,
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
    linked, _linked = _linked, None
    if not linked.answered and not interrupted:
        # stopped before its jobs asked for the parent (a config error the sweeper found
        # while the recorder opened it): read the answer, so that a refused parent takes
        # the sweep's folder (its multirun.yaml holds the overrides) away with it
        try:
            linked.await_parent()
        except SweepRefused:
            return True  # the recorder has no sweep to end: its own line said why
    link.LINK.send(("sweep-end", interrupted))
    return True


# --- the callback ---------------------------------------------------------------------


class MlflowSweepCallback(Callback):
    """Hydra's multirun, one parent MLflow run (``sweeps.parent.SweepParent``): planned
    and checked at the multirun's start, its parent opened (here, or by the recorder),
    each job made its child, the parent summarised and ended at the multirun's end."""

    def __init__(self) -> None:
        self.parent: SweepParent | None = None  # the sweep's parent run, once planned
        self.launcher_pid = os.getpid()
        self.sweep_folder = None  # created.Created: the sweep's folder before Hydra made it
        self.answered = True  # whether the recorder's answer to sweep-start was read

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
        sweep_plan = plan(config)
        swept = swept_prefixes(sweep_plan)
        check_plan(sweep_plan, config)
        try:
            validate(config)
        except ConfigError as exc:
            if not any(exc.key == s or exc.key.startswith(s + ".") for s in swept):
                raise SweepRefused(str(exc)) from None
        check_launcher(config)
        warm_joblib_workers(config)
        start_ray(config)
        base, extra = name_parts(config, sweep_plan)
        # the user's config folders, which every job (and a rerun of it) composes with
        folders = user_config_dirs(config.hydra.runtime.config_sources)
        missing = missing_config_dirs(folders)
        if missing:
            raise SweepRefused(missing)
        searchpath = searchpath_override(folders)
        sweep_dir = str(Path(config.hydra.sweep.dir).resolve())
        try:  # Hydra makes it next, and would stop with a traceback after the parent opened
            Path(sweep_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SweepRefused(
                f"cannot make the sweep folder {sweep_dir} (hydra.sweep.dir): {exc.strerror}"
            ) from None
        self.parent = SweepParent(
            config=to_container(config),
            plan=sweep_plan,
            base=base,
            extra=extra,
            overrides=[console.redact(o) for o in config_overrides(config.hydra.overrides.task)]
            + searchpath,
            searchpath=searchpath,
            sweep_dir=sweep_dir,
            name=base,
        )
        if link.LINK is not None:  # the launching process records: it opens the parent
            global _linked
            link.LINK.send(("sweep-start", self.parent))
            _linked = self
            self.answered = False
            if sweep_plan.searched:  # another sweeper: its jobs may start at once
                self.await_parent()
        else:
            self.parent.open()

    def await_parent(self) -> None:
        """In a worker: the recorder's answer to ``sweep-start`` (the parent's ids), read
        once, when the jobs need it: rnnlab's sweeper reads it after composing every job,
        so that the worker composes while the recorder starts."""
        from rnnlab.cli import link

        if self.answered:
            return
        reply = link.LINK.recv()
        self.answered = True
        if reply[0] == "refused":
            from rnnlab.proc import created

            created.remove(self.sweep_folder)  # its folder and multirun.yaml: no sweep ran
            raise SweepRefused(reply[1])
        p = self.parent
        p.tracking_uri, p.experiment_id, p.parent_run_id = reply[1:]

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not end_linked() and self.parent is not None:
            self.parent.finalize()

    # --- each job, in whichever process runs it ------------------------------------

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        scrub_hydra_files(config)
        if _linked is self:
            self.await_parent()
        p = self.parent
        if p is None or p.parent_run_id is None:
            return  # a single run: no parent
        if os.getpid() != self.launcher_pid:  # a worker process (joblib, Ray)
            signals.install_signal_handlers()
            console.quiet()
            if not getattr(MlflowSweepCallback, "_watching", False):
                signals.watch_parent()
                MlflowSweepCallback._watching = True
        _current = SweepContext(
            p.tracking_uri,
            p.experiment_id,
            p.parent_run_id,
            int(config.hydra.job.num),
            self.launcher_pid,
            tuple(p.plan.swept) if p.plan else (),
        )

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        _current = None
