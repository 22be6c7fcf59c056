"""The ``rnnlab`` command in two processes, one per core: a worker runs Hydra and the
numerics, the launching process records to MLflow.

``import mlflow`` and MLflow's SQL store cost ~2 s, Hydra's composition and the job
another 0.5-2 s (figures included): done one after the other they were most of a run's
time. ``cli.app.cli`` forks a worker that runs the usual Hydra entry point, while this
process (the recorder) imports MLflow. The worker sends two messages through a pipe:
``start`` (the checked config: the recorder opens the run, so that it shows RUNNING
during training and a signal or a crash is recorded) and ``result`` (the computed job,
its files written: the recorder logs it and ends the run). MLflow runs only here.

A sweep (``-m``) streams the same way: ``sweep-start`` (the recorder opens the parent
and answers with its ids), ``job-start``/``job-result`` per job that the worker runs
itself (the basic launcher: the recorder logs job k while the worker computes job k+1),
``sweep-end`` (the recorder summarises). Jobs that other processes run (joblib, Ray)
record themselves, under the parent the recorder opened.

The recorder owns the runs and the console's last word: it ends each run FINISHED,
FAILED (a failed gradient check, the worker's crash) or KILLED (a signal: the worker is
stopped too), prints the lab's lines (a sweep's line per job and its summary), and
exits with the worker's status where the worker failed first (a bad value: one line,
exit 2, no run). The Python API, reruns and joblib/Ray workers run in one process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any


def eligible(args: list[str]) -> bool:
    """A run or a sweep (only overrides on the command line, and -m: no --cfg, --help),
    where this process can fork."""
    from rnnlab.proc import forked

    flags = [a for a in args if a.startswith("-") and a not in ("-m", "--multirun")]
    return forked.enabled() and not flags


# --- the launching process -------------------------------------------------------------


def run(args: list[str], worker) -> int:
    """Fork the worker (``worker()`` returns its exit status), record what it sends;
    return the command's exit status."""
    import multiprocessing

    from rnnlab.proc import forked, signals

    receive, send = multiprocessing.Pipe()  # duplex: a sweep's start is answered
    pid = os.fork()
    if pid == 0:  # the worker
        from rnnlab.cli import link

        receive.close()
        link.connect(send)
        forked.enable(False)  # the worker is the second core: it draws the figures itself
        signals.watch_parent()  # the recorder gone (kill -9): stop too
        code = 1
        try:
            code = worker()
        except BaseException:  # a bug: its traceback, as one process would show it
            traceback.print_exc()
        send.close()
        # a normal exit: joblib's and Hydra's exit hooks run (the recorder's atexit
        # hooks, inherited, find nothing of theirs open in this process)
        sys.exit(code)
    send.close()
    return Recorder(receive, pid).serve()


class Recorder:
    def __init__(self, link, worker_pid: int) -> None:
        self.link, self.worker_pid = link, worker_pid
        self.opened: dict[Any, Any] = {}  # job (None: a single run) -> runner.Opened
        self.sweep = None  # the sweep's parent (sweeps.parent.SweepParent), once open
        self.folder: Path | None = None  # a single run's artifact folder, once started
        self.created = None  # what the worker noted of its run folder (created.Created)
        self.status: int | None = None  # the worker's exit status, once it has ended
        self._ended = threading.Event()  # set once the worker has ended (_watch_worker)
        self._reading = threading.Lock()  # one reader of the link at a time
        self._received = 0  # messages read from the worker
        self._pending: list[tuple] = []  # read by the watcher, not yet handled
        self.code = 0  # this command's exit status, as far as the recorder knows

    def serve(self) -> int:
        from rnnlab import console
        from rnnlab.proc import signals
        from rnnlab.store import runs

        threading.Thread(target=self._watch_worker, name="rnnlab-worker", daemon=True).start()
        try:
            _warm_up()
            return self._loop()
        except _StoreFailed as failed:
            return self._store_failed(failed.error)
        except KeyboardInterrupt as exc:
            why = exc.signal_name if isinstance(exc, signals.Interrupted) else "SIGINT"
            self._stop_worker()
            self._end_open("KILLED", f"interrupted ({why})")
            if self.sweep is not None:
                self.sweep.finalize(interrupted=True)
            console.say(runs.interrupted_line("rnnlab", why), err=True)
            return 130

    def _loop(self) -> int:
        from rnnlab import console
        from rnnlab.jobs import basin_map, results, text, training
        from rnnlab.proc import signals

        result = None
        while True:
            signals.check_signals()
            try:
                message = self._next()
            except (EOFError, ConnectionResetError):  # the worker has ended
                break
            kind = message[0]
            with _store_errors(opening=kind in ("start", "sweep-start")):
                if kind == "start":
                    _, task, config, overrides, self.folder, self.created = message
                    opens = basin_map.open_basin if task == "basin_map" else training.open_run
                    self.opened[None] = opens(config, overrides, self.folder)
                elif kind == "result":
                    prepared = message[1]
                    finish = (
                        basin_map.finish_basin
                        if isinstance(prepared, basin_map.PreparedBasin)
                        else training.finish_run
                    )
                    try:
                        result = finish(self.opened.pop(None), prepared)
                    except Exception as exc:
                        if exc is not prepared.problem:
                            raise  # the store's failure (or a bug), not the job's
                        self._wait_worker()
                        if isinstance(exc, results.GradientCheckFailed):
                            console.say(f"rnnlab: gradient check failed: {exc}", err=True)
                        else:
                            console.error("rnnlab", f"the job failed: {type(exc).__name__}: {exc}")
                        return 1
                elif kind == "sweep-start":
                    self._start_sweep(message[1])
                elif kind == "job-start":
                    self._start_job(*message[1:])
                elif kind == "job-result":
                    self._finish_job(*message[1:])
                elif kind == "sweep-end":
                    self._end_sweep(interrupted=message[1])
        status = self._wait_worker()
        why = f"the worker process ended with status {status} before the job was done"
        state = "KILLED" if status in (130, -signal.SIGTERM, -signal.SIGKILL) else "FAILED"
        self._end_open(state, why)
        if self.sweep is not None:  # the worker ended without the sweep's end
            self._end_sweep(interrupted=True)
        signals.check_signals()
        if isinstance(result, dict):  # a basin map's metrics
            console.say(basin_map.basin_report(result))
        elif result is not None:
            console.say(text.report(result))
        return status if status in (2, 130) or self.code == 0 else self.code

    # --- a sweep ---------------------------------------------------------------------

    def _start_sweep(self, parent) -> None:
        """Open the sweep's parent (``sweeps.parent.SweepParent``, sent by the worker) and
        answer with its ids, or with why the store refused it."""
        from rnnlab.sweeps import plan

        try:
            parent.open()
        except plan.SweepRefused as exc:
            self._answer(("refused", str(exc)))
            return
        self.sweep = parent
        self._answer(("ok", parent.tracking_uri, parent.experiment_id, parent.parent_run_id))
        # idle while the worker composes the first jobs: load what the summary will need
        import rnnlab.plots  # noqa: F401

    def _answer(self, message: tuple) -> None:
        """Answer the worker; if it has already ended (a config error it found while the
        parent opened: its own one line says so), there is no one to answer, and the
        closed pipe is not the store's failure."""
        try:
            self.link.send(message)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _start_job(self, num: int, config, overrides, folder) -> None:
        from rnnlab.jobs import text, training
        from rnnlab.sweeps import plan

        cb = self.sweep
        self.opened[num] = training.open_run(
            config,
            overrides,
            folder,
            parent_run_id=cb.parent_run_id,
            experiment_id=cb.experiment_id,
            extra_tags={plan.SWEEP_JOB_TAG: str(num)},
            tracking_uri=cb.tracking_uri,
            job=text.SweepJob.of(num, overrides, cb.plan.swept if cb.plan else ()),
        )

    def _finish_job(self, num: int, label: str, prepared) -> None:
        from rnnlab import console
        from rnnlab.cli.errors import user_error
        from rnnlab.jobs import text, training

        opened = self.opened.pop(num)
        try:
            result = training.finish_run(opened, prepared, log_model=False)
        except Exception as exc:
            if exc is not prepared.problem:
                raise  # the store's failure (or a bug), not the job's
            console.say(f"{label}: FAILED: {user_error(exc) or f'{type(exc).__name__}: {exc}'}")
            return
        console.say(f"{label}: {text.outcome(result.trajectory)}; run {result.run_id}")

    def _end_sweep(self, interrupted: bool) -> None:
        from rnnlab import console

        cb, self.sweep = self.sweep, None
        if cb is None:  # its parent was refused (the recorder's line said why)
            return
        summary = cb.finalize(interrupted=interrupted)
        if summary is not None and (summary.failed or summary.not_started) and not interrupted:
            failed = len(summary.failed) + len(summary.not_started)
            self.code = 1
            if len(summary.not_started) == len(summary.rows):
                return  # no job started: the worker's one line says why (a config error)
            console.say(
                f"rnnlab: {failed} of {len(summary.rows)} jobs failed or did not run (listed "
                "above); the sweep's parent run is marked FAILED",
                err=True,
            )

    # --- the worker, open runs, a failing store --------------------------------------------

    def _store_failed(self, exc: BaseException) -> int:
        """The store stopped taking writes (a server gone, a full disk): stop the worker,
        end what can be ended (the rest waits in the journal, written on the next start
        against this store or by rnnlab-doctor), say so in one line."""
        from rnnlab import console
        from rnnlab.store import uris

        self._stop_worker()
        if isinstance(exc, uris.StoreError):  # the store could not be opened: no run
            from rnnlab.proc import created

            created.remove(self.created)  # the worker's files for a run that never was
            console.error("rnnlab", str(exc))
            return 2
        from rnnlab.store import runs

        mark = len(runs.history)  # what happens to the runs from here on is said
        self._end_open("KILLED", f"the store failed: {uris.reason(exc)}", quiet=True)
        if self.sweep is not None:
            cb, self.sweep = self.sweep, None
            try:
                cb.finalize(interrupted=True, quiet=True)
            except Exception:
                pass  # its end waits in the journal (lifecycle.end)
        console.error(
            "rnnlab",
            f"the MLflow store stopped working ({uris.reason(exc)}); rnnlab stopped: "
            f"{runs.what_ended(mark)}",
        )
        return 1

    def _end_open(self, state: str, why: str, quiet: bool = False) -> None:
        from rnnlab.store import runs

        for opened in self.opened.values():
            runs.end(opened.client, opened.run_id, state, why, quiet=quiet)
        self.opened.clear()

    def _next(self) -> tuple:
        with self._reading:
            message = self._pending.pop(0) if self._pending else self.link.recv()
            self._received += 1
            return message

    def _watch_worker(self) -> None:
        """Wait for the worker; if it failed before sending anything (a bad value: it has
        said so in one line), end now rather than after the recorder's imports."""
        _, status = os.waitpid(self.worker_pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.status = code
        self._ended.set()
        from rnnlab.proc import signals

        if signals.received() is not None:
            return  # this process is stopping on a signal: it says so and exits itself
        if code == 0 or not self._reading.acquire(blocking=False):
            return  # the main loop is reading: it sees the end itself
        try:
            if self._received or self._pending or self.opened or self.sweep is not None:
                return
            try:
                self._pending.append(self.link.recv())  # a message after all: handled later
                return
            except (EOFError, ConnectionResetError):
                pass
        finally:
            self._reading.release()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def _wait_worker(self) -> int:
        self._ended.wait()
        return self.status

    def _stop_worker(self, grace: float = 10.0) -> None:
        """End the worker: SIGTERM, then SIGKILL if it has not ended within ``grace``
        seconds. Meanwhile what it still sends is read and dropped: a worker blocked
        writing a job's result into a full pipe (the recorder stopped reading), with its
        signals already spent, would otherwise never end, and the command would hang."""
        import time

        if self._ended.is_set():
            return
        try:
            os.kill(self.worker_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while not self._ended.wait(0.05) and time.monotonic() < deadline:
            self._drain()
        if not self._ended.is_set():
            try:
                os.kill(self.worker_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._wait_worker()

    def _drain(self) -> None:
        """Read and drop what the worker has sent (nothing is recorded any more)."""
        if not self._reading.acquire(blocking=False):
            return
        try:
            while self.link.poll(0):
                self.link.recv_bytes()
        except (EOFError, OSError):
            pass
        finally:
            self._reading.release()


class _StoreFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _store_errors:
    """Turn the store's failures (tracking.is_store_error) into _StoreFailed: the
    recorder stops on them. While ``opening`` a run, any of them says the store cannot
    be used (a StoreError: one line, exit 2, no run)."""

    def __init__(self, opening: bool = False) -> None:
        self.opening = opening

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        from rnnlab.store import uris

        if not uris.is_store_error(exc):
            return False
        if self.opening and not isinstance(exc, uris.StoreError):
            exc = uris.StoreError(f"cannot use the MLflow store: {uris.reason(exc)}")
        raise _StoreFailed(exc) from exc


def _warm_up() -> None:
    """What recording needs, imported while the worker composes and computes: MLflow,
    its SQL store, the pyfunc flavour, the dataset entity, rnnlab's store and jobs. A
    signal meanwhile takes effect once the imports are done: cut inside one, a library
    may turn it into another error (Python wraps an exception raised in a descriptor's
    ``__set_name__``, as pydantic's class set-up under MLflow's import does, into a
    RuntimeError) and the command would end with a traceback."""
    from rnnlab.proc import signals

    with signals.shielded():
        import mlflow.data.numpy_dataset
        import mlflow.pyfunc
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

        from rnnlab.jobs import basin_map, text, training  # noqa: F401
        from rnnlab.store import client, experiments, log, query, runs, ui  # noqa: F401
