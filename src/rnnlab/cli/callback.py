"""The sweep's Hydra callback, a thin adapter: ``on_multirun_start`` plans and checks the
sweep and has the recorder open its parent; each job's ``on_job_start`` publishes the sweep
to the job, in whichever process runs it; ``on_multirun_end`` has the parent summarised."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rnnlab import console
from rnnlab.cli.launchers import (
    RNNLAB_LAUNCHER,
    check_launcher,
    scrub_hydra_files,
    start_ray,
    worker_tags,
)
from rnnlab.config import (
    ConfigError,
    config_overrides,
    job_environment,
    missing_config_dirs,
    searchpath_override,
    to_container,
    user_config_dirs,
    validate,
)
from rnnlab.errors import SweepRefused, user_error
from rnnlab.jobs import recorder as recording
from rnnlab.jobs.spec import SweepRef
from rnnlab.proc import created, link, signals
from rnnlab.sweeps.parent import SweepParent
from rnnlab.sweeps.plan import SWEEP_JOB_TAG, Plan, check_plan, name_parts, plan


@dataclass(frozen=True)
class SweepContext:
    """What a job of a sweep needs: the sweep, its number, the keys the sweep varies."""

    ref: SweepRef
    num: int
    plan: Plan | None = None  # what the sweep varies (None: a sweeper rnnlab cannot plan)
    tags: dict[str, str] = field(default_factory=dict)


_current: SweepContext | None = None
_watching: list[bool] = []  # in a launcher's worker process: its sweep's process watched
_open: dict[str, tuple[Any, SweepParent]] = {}  # key -> (recorder, parent): sweeps begun here


def current() -> SweepContext | None:
    """The sweep the running job belongs to (None outside a multirun)."""
    return _current


def end_open_sweeps(interrupted: bool = False, error: str | None = None) -> bool:
    """End the sweeps this process opened and has not ended (the fallback of an error or
    a signal): whether jobs of theirs failed (then the error is theirs, recorded on
    their runs, not ``error``)."""
    failed = False
    for key in list(_open):
        recorder, parent = _open.pop(key)
        answer = recorder.end_sweep(key, interrupted, error).get()
        if answer is None:  # no parent run: its folder goes too (multirun.yaml, job folders)
            created.remove(parent.created)
        failed = bool(answer) or failed
    return failed


def _sweep_gone() -> None:
    """In a launcher's worker process whose sweep has gone (kill -9): its job, if one runs,
    stops at its next safe point and ends its run KILLED; the process leaves within 5 s."""
    import signal
    import threading

    os.kill(os.getpid(), signal.SIGTERM)
    threading.Timer(5.0, os._exit, (1,)).start()


class MlflowSweepCallback(Callback):
    """Hydra's multirun as one parent MLflow run (see the module's docstring)."""

    def __init__(self) -> None:
        self.parent: SweepParent | None = None
        self.ids: tuple[str, str, str, str] | None = None  # (store, experiment, parent, name)
        self.reply: link.Reply | None = None  # the recorder's answer, until it is read
        self.launcher_pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:  # a worker gets the ids, not the pipe
        self.resolve()
        return {**self.__dict__, "reply": None}

    def resolve(self) -> tuple[str, str, str, str] | None:
        """The parent's ids, read from the recorder's answer where not yet read. Raises
        what Hydra lets through its callbacks: SystemExit(1) where the recorder has
        stopped (it says why), KeyboardInterrupt where it was interrupted first,
        SweepRefused where the store refused the parent (its folder then goes). The first
        read says where the parent is."""
        if self.reply is not None:
            answer, self.reply = self.reply.get(), None
            if answer is None:
                raise KeyboardInterrupt
            if isinstance(answer, SweepRefused):  # the store refused the parent
                created.remove(self.parent.created if self.parent else None)
                raise answer
            *ids, line = answer
            self.ids = (ids[0], ids[1], ids[2], ids[3])
            console.say(line)
        return self.ids

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before Hydra makes the run's folder: note what is there (a run refused later
        removes only what it made)."""
        try:
            folder = OmegaConf.select(config, "hydra.run.dir")
        except Exception:  # an interpolation only Hydra's job can resolve: note nothing
            return
        if folder:
            created.note(str(folder))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Plan and check the sweep, then have its parent opened. A mistake found here
        stops the sweep in one line (SweepRefused; Hydra would turn another exception
        into a warning and run the jobs anyway)."""
        noted = created.note(str(config.hydra.sweep.dir))  # taken away if refused
        try:
            self._start(config, noted)
        except SweepRefused:
            created.remove(noted)
            raise
        except Exception as exc:
            created.remove(noted)
            problem = user_error(exc)
            if problem is None:
                raise
            raise SweepRefused(problem) from None

    def _start(self, config: DictConfig, noted: created.Created) -> None:
        self.launcher_pid = os.getpid()
        console.quiet_search(str(config.hydra.sweeper.get("_target_", "")))
        sweep_plan = plan(config)
        check_plan(sweep_plan, config)
        try:
            validate(config)
        except ConfigError as exc:  # a swept key's value is each job's to check
            if not any(exc.key == s or exc.key.startswith(s + ".") for s in sweep_plan.swept):
                raise SweepRefused(str(exc)) from None
        check_launcher(config)
        folders = user_config_dirs(config.hydra.runtime.config_sources)
        missing = missing_config_dirs(folders)
        if missing:
            raise SweepRefused(missing)
        start_ray(config)
        sweep_dir = str(Path(config.hydra.sweep.dir).resolve())
        try:  # Hydra makes it next, and would stop with a traceback after the parent opened
            Path(sweep_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SweepRefused(
                f"cannot make the sweep folder {sweep_dir} (hydra.sweep.dir): {exc.strerror}"
            ) from None
        base, extra = name_parts(config, sweep_plan)
        searchpath = searchpath_override(folders)
        overrides = [console.redact(o) for o in config_overrides(config.hydra.overrides.task)]
        with job_environment(config):  # (its jobs' store: MLFLOW_TRACKING_URI set there)
            parent_config = to_container(config)
        self.parent = SweepParent(
            config=parent_config,
            plan=sweep_plan,
            base=base,
            extra=extra,
            overrides=overrides + searchpath,
            hydra_overrides=[
                console.redact(o)
                for o in config.hydra.overrides.hydra
                if not o.startswith("hydra.mode=")
            ],
            searchpath=searchpath,
            sweep_dir=sweep_dir,
            created=noted,
            name=base,
        )
        recorder = recording.current()
        # answered once its first job starts (its worker composes meanwhile), or now for
        # a launcher that hands the callback to processes of its own (joblib, Ray)
        self.reply = recorder.open_sweep(self.parent)
        _open[self.parent.key] = (recorder, self.parent)
        if config.hydra.launcher.get("_target_") != RNNLAB_LAUNCHER:
            self.resolve()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent is not None and self.parent.key in _open:
            recorder, _ = _open.pop(self.parent.key)
            recorder.end_sweep(self.parent.key).get()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        scrub_hydra_files(config)
        p = self.parent
        if p is None:
            return  # a single run
        ids = self.resolve() if os.getpid() == self.launcher_pid else self.ids
        if os.getpid() != self.launcher_pid:  # a worker process of joblib or Ray
            signals.install()
            console.quiet()
            if not _watching:
                link.watch_parent(_sweep_gone)
                _watching.append(True)
        ref = SweepRef(p.key, *ids) if ids else SweepRef(p.key)
        num = int(config.hydra.job.num)
        _current = SweepContext(ref, num, p.plan, {SWEEP_JOB_TAG: str(num), **worker_tags()})

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        global _current
        _current = None
