"""Run a pure function in a forked child process, to use the machine's second core.

The ``rnnlab`` command draws a run's figures (~1.5 s: matplotlib's import and five
figures) in a child while the parent opens the MLflow store and records the run (~2 s):
a default run costs the longer of the two instead of their sum. The child only writes
files; it never touches the store. Where fork is not the right tool (not Linux, a
library caller such as a notebook, ``RNNLAB_PARALLEL=0``) the function runs inline, with
the same results.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from rnnlab.proc import signals

_enabled = False  # switched on by the rnnlab command (``enable``)
_MAX_MESSAGE = 4000  # bytes: well under a pipe's buffer, so the child never blocks on it


class ForkedFailed(RuntimeError):
    """The child's function raised (its message) or the child died (its exit status)."""


def enable(on: bool = True) -> None:
    """Draw and write in a forked child from now on in this process (the ``rnnlab``
    command's recorder; not its worker, which is the second core itself, nor the Python
    API, whose caller's process is not rnnlab's to fork)."""
    global _enabled
    _enabled = on


def enabled() -> bool:
    """Whether ``Forked`` forks: switched on, on Linux, and RNNLAB_PARALLEL not 0."""
    return (
        _enabled
        and sys.platform == "linux"
        and os.environ.get("RNNLAB_PARALLEL", "1") not in ("0", "false")
    )


class Forked:
    """``fn(*args)`` in a forked child (or inline); ``wait()`` raises if it failed."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.pid: int | None = None
        self._error: BaseException | None = None
        if not enabled():
            try:
                fn(*args)
            except Exception as exc:
                self._error = exc
            return
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: run, report, leave without running the parent's exit hooks
            os.close(read)
            signals.default_handlers()
            code = 0
            try:
                fn(*args)
            except BaseException as exc:
                os.write(write, f"{type(exc).__name__}: {exc}".encode()[:_MAX_MESSAGE])
                code = 1
            finally:
                os._exit(code)
        os.close(write)
        self.pid, self._read = pid, read

    def wait(self) -> None:
        """Wait for the child; raise ForkedFailed if it failed (or the inline error)."""
        if self.pid is None:
            if self._error is not None:
                raise self._error
            return
        pid, self.pid = self.pid, None
        _, status = os.waitpid(pid, 0)
        message = os.read(self._read, _MAX_MESSAGE).decode(errors="replace")
        os.close(self._read)
        if status != 0:
            code = os.waitstatus_to_exitcode(status)
            raise ForkedFailed(message or f"the child process ended with status {code}")

    def cancel(self) -> None:
        """Stop the child (an interrupted or failed run does not wait for its figures)."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        try:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self._read)
