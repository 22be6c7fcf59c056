"""Signals, cooperatively (the one module that installs handlers): a handler notes the first
SIGINT, SIGTERM or SIGHUP; ``check`` raises ``Interrupted`` at the code's safe points; a
second signal ends the process at once, after the hooks given to ``on_second_signal``.
``on_first_signal`` hooks note the moment of the first."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

HANDLED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP) asked this process to stop."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum, self.signal_name = signum, signal.Signals(signum).name
        super().__init__(self.signal_name)

    def __reduce__(self) -> tuple:  # (a joblib worker's sends it back)
        return (Interrupted, (self.signum,))


_received: int | None = None  # the first signal
_first: list[Callable[[], None]] = []  # run as the first signal is noted
_second: list[Callable[[str], None]] = []  # run on a second signal, before the exit


def _note(signum: int, _frame: Any) -> None:
    global _received
    if _received is None:
        _received = signum
        for first in _first:
            first()
        return
    for hook in _second:  # a second signal: end now
        try:
            hook(signal.Signals(_received).name)
        except Exception:
            pass
    os._exit(130)


def install() -> None:
    """From now on SIGINT, SIGTERM and SIGHUP are noted (in the main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for sig in HANDLED:
            signal.signal(sig, _note)


def received() -> str | None:
    """The first signal's name (SIGINT, ...), None if none came."""
    return signal.Signals(_received).name if _received is not None else None


def check() -> None:
    """A safe point: raise ``Interrupted`` if a signal came."""
    if _received is not None:
        raise Interrupted(_received)


def on_first_signal(hook: Callable[[], None]) -> None:
    """Run ``hook()`` (in the signal handler: keep it to a note) as the first signal comes."""
    _first.append(hook)


def on_second_signal(hook: Callable[[str], None]) -> None:
    """Run ``hook(first signal's name)`` when a second signal ends the process."""
    _second.append(hook)


def handlers() -> dict:
    """The handlers now, for ``restore`` (the Python API leaves its caller's in place)."""
    return {sig: signal.getsignal(sig) for sig in HANDLED}


def restore(saved: dict) -> None:
    """Put back the handlers ``handlers()`` saw, and forget what was noted meanwhile."""
    if threading.current_thread() is threading.main_thread():
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)
    forget()


def forget() -> None:
    """Forget the signal noted and the hooks (a process just forked: its own start)."""
    global _received
    _received = None
    _first.clear()
    _second.clear()


def default() -> None:
    """The platform's default handlers (a forked child that must simply die of them)."""
    for sig in HANDLED:
        signal.signal(sig, signal.SIG_DFL)


def ignore() -> None:
    """Signals ignored from now on: a command whose work is done and said (its last
    steps, Python's own exit, must not end it -15)."""
    if threading.current_thread() is threading.main_thread():
        for sig in HANDLED:
            signal.signal(sig, signal.SIG_IGN)
