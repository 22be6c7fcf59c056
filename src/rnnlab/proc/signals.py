"""Signals, in one place: SIGINT, SIGTERM and SIGHUP become ``Interrupted`` (a
KeyboardInterrupt) in the main thread, writes to the store are ``shielded`` from them, and
a worker watches its parent. The only module that installs signal handlers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


class Interrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP) asked this process to stop."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signal_name = signal.Signals(signum).name
        super().__init__(self.signal_name)


_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


_received: int | None = None  # the first signal this process received
_first_signal_hooks: list[Callable[[], None]] = []


def when_signalled(hook: Callable[[], None]) -> None:
    """Call ``hook()`` when the first signal arrives, before ``Interrupted`` is raised
    (``store.runs`` notes which runs had ended by then)."""
    _first_signal_hooks.append(hook)


def _on_signal(signum: int, _frame: Any) -> None:
    # Once stopping, stop quietly: a second signal must not cut the clean-up short (only
    # SIGKILL can, and rnnlab-doctor repairs what that leaves). A Python handler that
    # does nothing, not SIG_IGN: Python raises "Signal N ignored due to race condition"
    # for a signal that arrives while its handler changes to SIG_IGN.
    global _received, _deferred
    _received = signum
    for hook in _first_signal_hooks:
        hook()
    for sig in _HANDLED:
        signal.signal(sig, _stopping)
    if _shield_depth:  # in the middle of a write to the store: after it
        _deferred = signum
        return
    raise Interrupted(signum)


_shield_depth = 0  # > 0 while a write to the store must not be cut in two
_deferred: int | None = None  # a signal that arrived meanwhile


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A write to the store (a batch, an artifact, a run's start or end, a sweep's
    summary) is not cut by a signal: one that arrives meanwhile raises ``Interrupted``
    when the block ends. A signal inside a database transaction left runs RUNNING (the
    store locked by the transaction cut short) and messages that were not true."""
    global _shield_depth, _deferred
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only: its writes are what to shield
        return
    _shield_depth += 1
    try:
        yield
    finally:
        _shield_depth -= 1
        if not _shield_depth and _deferred is not None:
            signum, _deferred = _deferred, None
            raise Interrupted(signum)


def received() -> int | None:
    """The first signal this process received (None if none)."""
    return _received


def check_signals() -> None:
    """Raise Interrupted if a signal arrived but its exception was lost: raised inside a
    finalizer (a weakref callback during garbage collection), Python prints and ignores
    it. Called where a run would otherwise end FINISHED."""
    if _received is not None:
        raise Interrupted(_received)


def _stopping(_signum: int, _frame: Any) -> None:
    """Signals after the first: the process is already ending its runs."""


def exit_on_signal(code: int) -> None:
    """From now on SIGINT, SIGTERM and SIGHUP end the process at once with ``code`` (the
    work is done; only exit hooks are left)."""

    def leave(_signum: int, _frame: Any) -> None:
        os._exit(code)

    if threading.current_thread() is threading.main_thread():
        for sig in _HANDLED:
            signal.signal(sig, leave)


def handlers() -> dict:
    """The handlers of SIGINT, SIGTERM and SIGHUP now, and the unraisable hook: what
    ``restore_handlers`` puts back (the Python API leaves its caller's as it found them)."""
    return {
        "signals": {sig: signal.getsignal(sig) for sig in _HANDLED},
        "unraisablehook": sys.unraisablehook,
    }


def restore_handlers(saved: dict) -> None:
    """Put back the handlers ``handlers()`` saw (in the main thread; others cannot)."""
    if threading.current_thread() is threading.main_thread():
        for sig, handler in saved["signals"].items():
            if signal.getsignal(sig) is not handler and handler is not None:
                signal.signal(sig, handler)
    sys.unraisablehook = saved["unraisablehook"]


def default_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP back to the operating system's default (a forked child
    that must die of them rather than raise in code that is not its own)."""
    for sig in _HANDLED:
        signal.signal(sig, signal.SIG_DFL)


def install_signal_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP raise ``Interrupted`` in this process's main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _HANDLED:
        signal.signal(sig, _on_signal)
    sys.unraisablehook = _unraisable


_default_unraisable = sys.unraisablehook


def _unraisable(info: Any) -> None:
    # An Interrupted raised inside a finalizer is lost (Python only prints it):
    # check_signals raises it again where it counts; nothing to print here.
    if isinstance(info.exc_value, Interrupted):
        return
    _default_unraisable(info)


def watch_parent(interval: float = 0.5) -> None:
    """End this worker process (as SIGTERM would) when the process that started it dies.

    Worker processes (joblib's loky workers) are reparented, not killed, when their
    launcher is killed; without this they would run on with their runs open.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="rnnlab-watch-parent", daemon=True).start()
