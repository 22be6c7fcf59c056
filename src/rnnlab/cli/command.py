"""A command's work and its recording: ``work(recorder)`` in a forked worker where the
platform may fork (this process, the one the user started, records what it forwards),
else here; the recorder ends every run it opened and says the last line."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from rnnlab import console
from rnnlab.errors import INTERRUPTED, USAGE_ERROR, StoreError, StoreFailed, SweepRefused
from rnnlab.jobs import recorder as recording
from rnnlab.proc import link, signals

FORWARD_AFTER = 1.0  # s: a signal only this process saw reaches the worker after this


def run(work: Callable[[Any], int], prog: str, fork: bool = True) -> int:
    """Run ``work`` with this process recording (see the module's docstring)."""
    fork = fork and link.can_fork()
    recorder = recording.LocalRecorder(prog, worker=fork)
    recording.use(recorder)
    signals.on_first_signal(recorder.note_signal)
    signals.on_second_signal(lambda _why: recorder.emergency())
    try:
        if fork:
            status = _serve(recorder, work)
        else:
            status = work(recorder)
    except (StoreFailed, StoreError, SweepRefused) as exc:
        return _store_failed(recorder, exc)
    return finish(recorder, status)


def _serve(recorder: recording.LocalRecorder, work: Callable[[Any], int]) -> int:
    """The worker forked, its calls done here until it ends; its exit status."""

    def in_worker(forwarder: link.Forwarder) -> int:
        signals.forget()  # the worker notes its own signals (and has no hooks)
        recording.use(forwarder)
        return work(forwarder)

    worker = link.Worker(in_worker, recording.ASKS)
    signals.on_second_signal(lambda _why: worker.send_signal(signal.SIGKILL))
    seen, forwarded = None, False
    try:
        recorder.warm_up()  # while the worker composes and computes
        for call in worker.calls():
            if signals.received() and not forwarded:
                import time

                seen = seen or time.monotonic()
                if time.monotonic() - seen > FORWARD_AFTER:
                    worker.send_signal(signal.SIGTERM)  # it may not have had the signal
                    forwarded = True
            if call is None:
                continue
            name, args, kwargs, answered = call
            value = getattr(recorder, name)(*args, **kwargs)
            if answered:
                worker.answer(value.get() if isinstance(value, link.Reply) else value)
            if isinstance(value, link.Reply) and value.then is not None:
                value.then()  # (the worker goes on meanwhile)
    except BaseException:
        worker.stop()
        raise
    from rnnlab.store import runs

    status = worker.status()
    if status < 0 and not signals.received():  # killed by a signal of its own (OOM)
        name = signal.Signals(-status).name
        mark = len(runs.history)
        recorder.close(f"the worker process was killed ({name})", killed=True)
        console.error(
            recorder.prog, f"the worker process was killed ({name}); {runs.what_ended(mark)}"
        )
        return 1
    return status


def finish(recorder: recording.LocalRecorder, status: int) -> int:
    """End what the work left open; the command's exit status."""
    if signals.received() is not None or status == INTERRUPTED:
        recorder.close()
        console.say(recorder.interrupted_line(), err=True)
        return INTERRUPTED
    if recorder.open or recorder.sweeps:
        recorder.close(f"the work ended with status {status} before its jobs did")
    return status if status else recorder.code


def _store_failed(recorder: recording.LocalRecorder, exc: BaseException) -> int:
    from rnnlab.proc import created

    created.remove(getattr(exc, "created", None))  # (the worker, if any, has stopped now)
    if isinstance(exc, StoreFailed):
        recorder.store_failed(exc)
        return 1
    console.error(recorder.prog, str(exc))  # the store refused the first run: none exists
    return USAGE_ERROR
