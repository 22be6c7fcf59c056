"""The recorder interface, the one way a job reaches MLflow: ``open_run``, ``record``, ``end``,
``open_sweep``, ``end_sweep``. ``LocalRecorder`` records here; a ``proc.link.Forwarder``
sends the calls to one in another process (``ASKS``: those answered). It says what became
of each run; after a signal it opens and records nothing more and ends what it has KILLED."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from rnnlab import console
from rnnlab.errors import StoreError, StoreFailed, SweepRefused
from rnnlab.jobs.spec import RunRecord, RunRef, RunSpec, SweepRef
from rnnlab.proc import link, signals

ASKS = frozenset({"open_sweep", "end_sweep"})


@dataclass
class _Open:
    client: Any
    run_id: str
    experiment_id: str
    tracking_uri: str
    spec: RunSpec
    record: RunRecord | None = None


class LocalRecorder:
    """Records in this process. ``quiet``: print nothing (the Python API). ``worker``: the
    jobs run in a worker process (a refused run's folder then goes once the worker has
    stopped writing into it; what the summary and the model need is imported while the
    worker computes)."""

    def __init__(self, prog: str = "rnnlab", quiet: bool = False, worker: bool = False) -> None:
        self.prog, self.quiet, self.worker = prog, quiet, worker
        self.open: dict[str, _Open] = {}
        self.sweeps: dict[str, Any] = {}  # key -> SweepParent, open
        self.progress: dict[str, console.Progress] = {}  # key -> a sweep's live line
        self.ended: dict[str, RunRef] = {}  # key -> where it is: the runs it ended
        self.code = 0  # the exit status the recorded outcomes call for (failed jobs: 1)
        self.mark: int | None = None  # runs.history's length when a signal was first seen

    @staticmethod
    def warm_up() -> None:
        """Import what recording needs (MLflow, its SQL store, the pyfunc flavour, rnnlab's
        store): the ``rnnlab`` command's recorder does it while its worker starts."""
        import mlflow.data.numpy_dataset
        import mlflow.pyfunc
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

        from rnnlab.store import client, experiments, lineage, log, models, query, runs, ui  # noqa: F401

    def note_signal(self) -> None:
        """Note how many runs had been started or ended when the first signal came (what
        the interrupted line reports is what ended after it)."""
        if self.mark is None:
            runs = sys.modules.get("rnnlab.store.runs")  # (none recorded if not imported)
            self.mark = len(runs.history) if runs is not None else 0

    def stopping(self) -> bool:
        """Whether a signal came (then nothing more is opened or recorded)."""
        if signals.received() is None:
            return False
        self.note_signal()
        return True

    def say(self, line: str, err: bool = False) -> None:
        if not self.quiet:
            console.say(line, err=err)

    # --- runs ---------------------------------------------------------------------------

    def open_run(self, key: str, spec: RunSpec) -> None:
        from rnnlab.store import lineage, log, orphans, runs, ui

        if self.stopping():
            return
        client, uri, experiment_id, parent_id, sweep_name = self._where(spec)
        tags = {**lineage.source_tags(console.redact(spec.source)), **spec.tags}
        if sweep_name:  # a column of the results view: which sweep a child belongs to
            tags[ui.IN_SWEEP_TAG] = sweep_name
        try:
            run_id = runs.start(client, experiment_id, spec.name, tags, parent_id, spec.params)
        except StoreError as exc:  # no run was created
            raise self._refused(exc, spec) from exc
        except Exception as exc:
            raise _failed(exc) from exc
        self.open[key] = _Open(client, run_id, experiment_id, uri, spec)
        try:
            log.log_files(client, run_id, spec.config_folder, "config")
            if spec.sweep is None:
                orphans.offer(client)
                ui.save_results_view(client, experiment_id)
        except Exception as exc:
            raise _failed(exc) from exc
        if self.worker and spec.sweep is None:  # (a sweep's: after ``open_sweep``)
            self._while_worker_computes(summary=False)

    @staticmethod
    def _while_worker_computes(summary: bool) -> None:
        """Once the worker has what it asked for and computes: MLflow's packages map, which
        the first model saved in this process builds, and, for a sweep's ``summary``,
        rnnlab.plots (its figures)."""
        from rnnlab import frameworks

        frameworks.build_requirements_map()
        if summary:
            import rnnlab.plots  # noqa: F401

    def _refused(self, error: StoreError, spec: RunSpec) -> StoreError:
        """The store took no run: the run's folder goes (``error.created``: what the
        command removes, after its worker has stopped writing into it)."""
        from rnnlab.proc import created

        if not self.worker:
            created.remove(spec.created)
        error.created = spec.created  # type: ignore[attr-defined]
        return error

    def _where(self, spec: RunSpec) -> tuple[Any, str, str, str | None, str | None]:
        """(client, store URI, experiment, parent run, its name) of a new run; StoreError
        (one line, no run) where the store cannot be used."""
        from rnnlab.store import client as client_mod
        from rnnlab.store import experiments, uris

        sweep = spec.sweep
        if sweep is not None and sweep.key in self.sweeps:
            parent = self.sweeps[sweep.key]
            sweep = SweepRef(
                sweep.key,
                parent.tracking_uri,
                parent.experiment_id,
                parent.parent_run_id,
                parent.name,
            )
        t = spec.tracking
        try:
            uri = uris.resolve_uri(str(sweep.tracking_uri if sweep else t["uri"]))
            client = client_mod.client_for(uri)
            if sweep is not None:
                return client, uri, str(sweep.experiment_id), sweep.parent_run_id, sweep.name
            if spec.experiment_id is not None:
                return client, uri, spec.experiment_id, spec.parent_run_id, None
            experiment_id = experiments.ensure_experiment(
                client, t["experiment"], t["artifact_root"], t["description"]
            )
        except Exception as exc:
            error = exc if isinstance(exc, StoreError) else None
            why = StoreError(f"cannot use the MLflow store: {uris.reason(exc)}")
            raise self._refused(error or why, spec) from exc
        return client, uri, experiment_id, None, None

    def record(self, key: str, record: RunRecord) -> None:
        from rnnlab.store import log, models

        run = self.open.get(key)
        if run is None or self.stopping():
            return
        run.record = record
        client, run_id = run.client, run.run_id
        try:
            log.log_batch(client, run_id, metrics=record.metrics, tags=record.tags)
            if record.dataset is not None:
                d = record.dataset
                name = f"{d.recipe}-{d.X.shape[0]}x{d.X.shape[1]}-seed{d.seed}"
                log.log_dataset(client, run_id, name, d.digest, d.X, d.t)
            for artifact_path, folder in record.folders.items():
                log.log_files(client, run_id, folder, artifact_path)
            if record.model is not None:
                models.log_model(client, run.experiment_id, run_id, *record.model)
        except Exception as exc:
            raise _failed(exc) from exc

    def end(
        self, key: str, status: str, error: str | None = None, trace: str = "", said: str = ""
    ) -> None:
        """End the run (its error and traceback recorded) and say so: a sweep job's line
        (``said``: its error for a person), a single run's report and links."""
        from rnnlab.store import runs

        run = self.open.get(key)  # open until the store has its end: a second signal
        if run is None:  # meanwhile journals it (``emergency``)
            return
        if status == "FINISHED" and self.stopping():
            status, error = "KILLED", f"interrupted ({signals.received()})"
        runs.end(run.client, run.run_id, status, error, trace)
        self.open.pop(key, None)
        self.ended[key] = RunRef(run.run_id, run.experiment_id, run.tracking_uri)
        spec, record = run.spec, run.record
        progress = self._progress(spec)
        if progress is not None and status == "FINISHED" and record is not None:
            if not self.quiet:  # one live line in place of every job's
                console.live(progress.job(diverged=record.tags.get("status") == "diverged"))
        elif spec.label and status == "FINISHED" and record is not None:
            self.say(f"{spec.label}: {record.outcome}; run {run.run_id}")
        elif spec.label and status == "FAILED":
            self.say(f"{spec.label}: FAILED: {said or error}")  # (above the live line)
            if progress is not None and not self.quiet:
                console.live(progress.job(failed=True))
        elif status == "FINISHED" and record is not None:
            lines = [line.replace("{run_id}", run.run_id) for line in record.lines]
            self.say("\n".join([*lines, *self.links(run)]))

    def _progress(self, spec: RunSpec) -> console.Progress | None:
        """The live line of a job's sweep (``adopt_sweep``), if it has one."""
        return self.progress.get(spec.sweep.key) if spec.sweep and spec.label else None

    def links(self, run: _Open) -> list[str]:
        """Where a single run is, and its links in the MLflow UI."""
        from rnnlab.store import ui, uris

        base = ui.base_url(run.tracking_uri, run.spec.tracking.get("ui_url"))
        where = f"MLflow run {run.run_id} (experiment {run.experiment_id}) in "
        return [
            where + uris.redact(run.tracking_uri),
            *ui.run_lines(base, run.experiment_id, run.run_id),
        ]

    # --- sweeps --------------------------------------------------------------------------

    def open_sweep(self, parent: Any) -> link.Reply:
        """Open the sweep's parent; answers with (store URI, experiment, parent run, its
        name, the line that says so), or None after a signal, or the SweepRefused of a store that
        refused it (for the sweep to raise: a mistake its worker finds meanwhile is told
        first)."""
        if self.stopping():
            return link.Ready(None)
        try:
            parent.open()
        except SweepRefused as exc:
            return link.Ready(exc)
        self.adopt_sweep(parent)
        ids = (parent.tracking_uri, parent.experiment_id, parent.parent_run_id, parent.name)
        then = (lambda: self._while_worker_computes(summary=True)) if self.worker else None
        return link.Ready((*ids, parent.opened_line()), then=then)

    def adopt_sweep(self, parent: Any) -> None:
        """Record the jobs of the open sweep ``parent`` (opened here, or by this process's
        command itself: a rerun's, a resumed one). Where its jobs would not fit on the
        terminal, one live line, its clock started now (a search's: it does not say how
        many jobs it runs)."""
        self.sweeps[parent.key] = parent
        jobs = parent.plan.jobs if parent.plan is not None and not parent.plan.searched else []
        if jobs and console.live_wanted(len(jobs)):
            self.progress[parent.key] = console.Progress(len(jobs))

    def end_sweep(
        self, key: str, interrupted: bool = False, error: str | None = None
    ) -> link.Reply:
        """Summarise the sweep and end its parent: KILLED if ``interrupted`` (or after a
        signal), FAILED by its jobs, or with ``error`` (what stopped it, where no job
        failed). Answers whether jobs of it failed (what stopped it, then), None for a
        sweep it has not opened (its store refused it)."""
        parent = self.sweeps.get(key)  # open until its end is written (as ``end``)
        if parent is None:
            return link.Ready(None)
        try:
            summary = parent.finalize(interrupted=interrupted or self.stopping(), error=error)
        finally:
            self.sweeps.pop(key, None)
            self.progress.pop(key, None)
        if summary is None or interrupted or self.stopping():
            return link.Ready(bool(summary and summary.unfinished))
        if summary.unfinished or summary.not_started:
            self.code = 1
            failed = len(summary.unfinished) + len(summary.not_started)
            if len(summary.not_started) < len(summary.rows):  # (none started: a line said why)
                self.say(
                    f"{self.prog}: {failed} of {len(summary.rows)} jobs failed or did not run "
                    "(listed above); the sweep's parent run is marked FAILED",
                    err=True,
                )
        return link.Ready(bool(summary.unfinished))

    # --- the command's end ------------------------------------------------------------------

    def close(self, why: str | None = None, killed: bool = False) -> None:
        """End what is still open: KILLED after a signal (or, ``killed``, where a signal
        ended the worker: the OOM killer's), else FAILED with ``why`` (the worker process
        ended before its jobs did)."""
        status = "KILLED" if self.stopping() or killed else "FAILED"
        reason = (
            f"interrupted ({signals.received() or 'a signal to its worker'})"
            if self.stopping()
            else why
        )
        for key in list(self.open):
            self.end(key, status, reason)
        for key in list(self.sweeps):
            self.end_sweep(key, interrupted=True)

    def interrupted_line(self) -> str:
        from rnnlab.store import runs

        why = signals.received() or "a signal to its worker process"
        return f"{self.prog}: interrupted ({why}); {runs.what_ended(self.mark or 0)}"

    def store_failed(self, exc: StoreFailed) -> None:
        """The store stopped taking writes: end what can be ended (the rest waits in the
        journal), one line."""
        from rnnlab.store import runs, uris

        mark = len(runs.history)
        for key in list(self.open):
            self.end(key, "KILLED", f"the store failed: {uris.reason(exc.error)}")
        for key, parent in list(self.sweeps.items()):
            self.sweeps.pop(key)
            try:
                parent.finalize(interrupted=True)
            except Exception:
                pass  # its end waits in the journal
        self.say(
            f"{self.prog}: error: the MLflow store stopped working ({uris.reason(exc.error)}); "
            f"{self.prog} stopped: {runs.what_ended(mark)}",
            err=True,
        )

    def emergency(self) -> None:
        """A second signal: keep every open run's end in the journal (written on the next
        start against its store) and say so; the process ends at once after this."""
        from rnnlab.store import pending

        ids = []
        for run in self.open.values():
            pending.add(run.tracking_uri, run.run_id, "KILLED", "interrupted twice")
            ids.append(run.run_id)
        for parent in self.sweeps.values():
            pending.add(parent.tracking_uri, parent.parent_run_id, "KILLED", "interrupted twice")
            ids.append(parent.parent_run_id)
        kept = (
            f"{len(ids)} run(s) to be marked KILLED on the next rnnlab start"
            if ids
            else ("no run was open")
        )
        self.say(f"{self.prog}: interrupted twice ({signals.received()}); {kept}", err=True)


def _failed(exc: Exception) -> BaseException:
    """The store's failure to take a write as StoreFailed (the command stops on it); what
    is not the store's is raised as it is."""
    from rnnlab.store import uris

    if isinstance(exc, StoreError):
        return exc
    return StoreFailed(exc) if uris.is_store_error(exc) else exc


_current: Any = None  # the recorder of this process's jobs


def current() -> Any:
    """The recorder this process's jobs use: the one set by ``use``, else a LocalRecorder
    (a joblib or Ray worker records its jobs itself)."""
    global _current
    if _current is None:
        _current = LocalRecorder()
    return _current


def use(recorder: Any) -> None:
    """Jobs of this process record through ``recorder`` from now on (None: forget it)."""
    global _current
    _current = recorder
