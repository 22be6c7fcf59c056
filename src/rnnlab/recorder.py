"""The ``rnnlab`` command in two processes, one per core: a worker runs Hydra and the
numerics, the launching process records to MLflow.

``import mlflow`` and MLflow's SQL store cost ~2 s, Hydra's composition and the job
another 0.5-2 s (figures included): done one after the other they were most of a run's
time. ``app.cli`` forks a worker that runs the usual Hydra entry point, while this
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
import pickle
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

LINK: Any = None  # in the worker: its end of the pipe (multiprocessing.connection)
_job_failures: set[int] = set()  # in the worker: the errors its sweep's jobs raised


def eligible(args: list[str]) -> bool:
    """A run or a sweep (only overrides on the command line, and -m: no --cfg, --help)."""
    from rnnlab import forked

    forked.ENABLED = True
    flags = [a for a in args if a.startswith("-") and a not in ("-m", "--multirun")]
    return forked.enabled() and not flags


def note_job_failure(exc: BaseException) -> None:
    """``exc`` is a sweep job's own failure (recorded on its run)."""
    _job_failures.add(id(exc))


def job_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a sweep job's own failure (recorded on its run), not Hydra's."""
    return id(exc) in _job_failures


def request(message: tuple) -> tuple:
    """In the worker: send ``message`` and wait for the recorder's answer."""
    LINK.send(message)
    return LINK.recv()


# --- the worker ---------------------------------------------------------------------------


def hand_over(cfg, output_dir: Path, overrides: list[str]) -> float:
    """In the worker: check the config (a bad value raises: no run), let the recorder
    open the run, compute and write the job, hand it over. Returns the final loss."""
    import gc

    from rnnlab import runner
    from rnnlab.config import to_container, validate

    gc.freeze()  # start-up's imports done (app.cli turned collection off for them)
    gc.enable()
    validate(cfg)
    config = to_container(cfg)
    from rnnlab import created

    # with what Hydra found in the run's folder: the recorder removes only what was made
    LINK.send(
        ("start", config, overrides, Path(output_dir) / "artifacts", created.noted(output_dir))
    )
    prepared = runner.prepare(cfg, output_dir, overrides, in_sweep=True, config=config)
    _send_result(("result",), prepared)
    loss = prepared.result.trajectory.final_loss if prepared.result else None
    return float("inf") if loss is None else loss


def hand_over_job(cfg, output_dir: Path, overrides: list[str], num: int, label: str) -> float:
    """In the worker, one job of a sweep: the recorder opens its run (a child of the
    parent), the worker computes and writes it, the recorder records it. A job's own
    failure is raised here too, after the recorder has it (Hydra marks the job failed)."""
    from rnnlab import runner
    from rnnlab.config import to_container

    config = to_container(cfg)
    LINK.send(("job-start", num, config, overrides, Path(output_dir) / "artifacts"))
    prepared = runner.prepare(cfg, output_dir, overrides, in_sweep=True, config=config)
    _send_result(("job-result", num, label), prepared)
    if prepared.problem is not None:
        note_job_failure(prepared.problem)
        raise prepared.problem
    loss = prepared.result.trajectory.final_loss
    return float("inf") if loss is None else loss


def _send_result(head: tuple, prepared) -> None:
    if prepared.files is not None:  # drawn inline here: the worker is the second core
        try:
            prepared.files.wait()
        except Exception as exc:
            prepared.problem = exc
        prepared.files = None
    try:
        message = pickle.dumps((*head, prepared))
    except Exception:  # an error that does not pickle: its text crosses instead
        prepared.problem = RuntimeError(f"{type(prepared.problem).__name__}: {prepared.problem}")
        message = pickle.dumps((*head, prepared))
    LINK.send_bytes(message)


# --- the launching process -------------------------------------------------------------


def run(args: list[str], worker) -> int:
    """Fork the worker (``worker()`` returns its exit status), record what it sends;
    return the command's exit status."""
    import multiprocessing

    from rnnlab import forked, lifecycle

    receive, send = multiprocessing.Pipe()  # duplex: a sweep's start is answered
    pid = os.fork()
    if pid == 0:  # the worker
        global LINK
        receive.close()
        LINK = send
        forked.ENABLED = False  # the worker is the second core: it draws the figures itself
        lifecycle.watch_parent()  # the recorder gone (kill -9): stop too
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
        self.sweep = None  # the sweep's callback (sweep.MlflowSweepCallback), once started
        self.folder: Path | None = None  # a single run's artifact folder, once started
        self.created = None  # what the worker noted of its run folder (created.Created)
        self.status: int | None = None  # the worker's exit status, once it has ended
        self._ended = threading.Event()  # set once the worker has ended (_watch_worker)
        self._reading = threading.Lock()  # one reader of the link at a time
        self._received = 0  # messages read from the worker
        self._pending: list[tuple] = []  # read by the watcher, not yet handled
        self.code = 0  # this command's exit status, as far as the recorder knows

    def serve(self) -> int:
        from rnnlab import console, lifecycle

        threading.Thread(target=self._watch_worker, name="rnnlab-worker", daemon=True).start()
        try:
            _warm_up()
            return self._loop()
        except _StoreFailed as failed:
            return self._store_failed(failed.error)
        except KeyboardInterrupt as exc:
            why = exc.signal_name if isinstance(exc, lifecycle.Interrupted) else "SIGINT"
            self._stop_worker()
            self._end_open("KILLED", f"interrupted ({why})")
            if self.sweep is not None:
                self.sweep.finalize(interrupted=True)
            console.say(lifecycle.interrupted_line("rnnlab", why), err=True)
            return 130

    def _loop(self) -> int:
        from rnnlab import console, lifecycle, runner

        result = None
        while True:
            lifecycle.check_signals()
            try:
                message = self._next()
            except (EOFError, ConnectionResetError):  # the worker has ended
                break
            kind = message[0]
            with _store_errors(opening=kind in ("start", "sweep-start")):
                if kind == "start":
                    _, config, overrides, self.folder, self.created = message
                    self.opened[None] = runner.open_run(config, overrides, self.folder)
                elif kind == "result":
                    try:
                        result = runner.finish_run(self.opened.pop(None), message[1])
                    except Exception as exc:
                        if exc is not message[1].problem:
                            raise  # the store's failure (or a bug), not the job's
                        self._wait_worker()
                        if isinstance(exc, runner.GradientCheckFailed):
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
        lifecycle.check_signals()
        if result is not None:
            console.say(runner.report(result))
        return status if status in (2, 130) or self.code == 0 else self.code

    # --- a sweep ---------------------------------------------------------------------

    def _start_sweep(self, callback) -> None:
        from rnnlab import sweep

        try:
            callback.open_parent()
        except sweep.SweepRefused as exc:
            self.link.send(("refused", str(exc)))
            return
        self.sweep = callback
        self.link.send(
            ("ok", callback.tracking_uri, callback.experiment_id, callback.parent_run_id)
        )
        # idle while the worker composes every job: load what the summary will need
        import rnnlab.plots  # noqa: F401

    def _start_job(self, num: int, config, overrides, folder) -> None:
        from rnnlab import runner, sweep

        cb = self.sweep
        self.opened[num] = runner.open_run(
            config,
            overrides,
            folder,
            parent_run_id=cb.parent_run_id,
            experiment_id=cb.experiment_id,
            extra_tags={sweep.SWEEP_JOB_TAG: str(num)},
            tracking_uri=cb.tracking_uri,
            job=runner.SweepJob.of(num, overrides, cb.plan.swept if cb.plan else ()),
        )

    def _finish_job(self, num: int, label: str, prepared) -> None:
        from rnnlab import console, runner
        from rnnlab.errors import user_error

        opened = self.opened.pop(num)
        try:
            result = runner.finish_run(opened, prepared, log_model=False)
        except Exception as exc:
            if exc is not prepared.problem:
                raise  # the store's failure (or a bug), not the job's
            console.say(f"{label}: FAILED: {user_error(exc) or f'{type(exc).__name__}: {exc}'}")
            return
        console.say(f"{label}: {runner.outcome(result.trajectory)}; run {result.run_id}")

    def _end_sweep(self, interrupted: bool) -> None:
        from rnnlab import console

        cb, self.sweep = self.sweep, None
        summary = cb.finalize(interrupted=interrupted)
        if summary is not None and (summary.failed or summary.not_started) and not interrupted:
            failed = len(summary.failed) + len(summary.not_started)
            console.say(
                f"rnnlab: {failed} of {len(summary.rows)} jobs failed or did not run (listed "
                "above); the sweep's parent run is marked FAILED",
                err=True,
            )
            self.code = 1

    # --- the worker, open runs, a failing store --------------------------------------------

    def _store_failed(self, exc: BaseException) -> int:
        """The store stopped taking writes (a server gone, a full disk): stop the worker,
        end what can be ended (the rest waits in the journal, written on the next start
        against this store or by rnnlab-doctor), say so in one line."""
        from rnnlab import console, tracking

        self._stop_worker()
        if isinstance(exc, tracking.StoreError):  # the store could not be opened: no run
            from rnnlab import created

            created.remove(self.created)  # the worker's files for a run that never was
            console.error("rnnlab", str(exc))
            return 2
        from rnnlab import lifecycle

        mark = len(lifecycle.history)  # what happens to the runs from here on is said
        self._end_open("KILLED", f"the store failed: {tracking.reason(exc)}", quiet=True)
        if self.sweep is not None:
            cb, self.sweep = self.sweep, None
            try:
                cb.finalize(interrupted=True, quiet=True)
            except Exception:
                pass  # its end waits in the journal (lifecycle.end)
        console.error(
            "rnnlab",
            f"the MLflow store stopped working ({tracking.reason(exc)}); rnnlab stopped: "
            f"{lifecycle.what_ended(mark)}",
        )
        return 1

    def _end_open(self, state: str, why: str, quiet: bool = False) -> None:
        from rnnlab import lifecycle

        for opened in self.opened.values():
            lifecycle.end(opened.client, opened.run_id, state, why, quiet=quiet)
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
        from rnnlab import lifecycle

        if lifecycle.received() is not None:
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
        from rnnlab import tracking

        if not tracking.is_store_error(exc):
            return False
        if self.opening and not isinstance(exc, tracking.StoreError):
            exc = tracking.StoreError(f"cannot use the MLflow store: {tracking.reason(exc)}")
        raise _StoreFailed(exc) from exc


def _warm_up() -> None:
    """What recording needs, imported while the worker composes and computes: MLflow,
    its SQL store, the pyfunc flavour and the dataset entity."""
    import mlflow.data.numpy_dataset
    import mlflow.pyfunc
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

    from rnnlab import lifecycle, runner, tracking  # noqa: F401
