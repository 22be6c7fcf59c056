"""A forked worker calling an object of the process that started it: ``Forwarder`` sends
(name, args) and returns at once (a ``Reply`` for the asks); ``Worker`` forks and yields the
calls. ``can_fork``: False where fork is missing or unsafe (one process then)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from rnnlab.proc import startup

Call = tuple[str, tuple[Any, ...], dict[str, Any], bool]  # name, args, kwargs, answered


def can_fork() -> bool:
    """Linux (fork is missing on Windows, unsafe on macOS), unless ``RNNLAB_PARALLEL=0``."""
    return (
        hasattr(os, "fork")
        and sys.platform == "linux"
        and os.environ.get("RNNLAB_PARALLEL", "1") not in ("0", "false")
    )


class Reply:
    """An answer of the other process, read when ``get`` is first called. ``then``: what
    the answering process does once it has answered (the asker goes on meanwhile)."""

    def __init__(
        self,
        source: Forwarder | None = None,
        value: Any = None,
        then: Callable[[], Any] | None = None,
    ) -> None:
        self._source, self._value, self._done = source, value, source is None
        self.then = then

    def get(self) -> Any:
        while not self._done:
            assert self._source is not None
            self._source.read_answer()
        return self._value


def Ready(value: Any, then: Callable[[], Any] | None = None) -> Reply:
    """An answer there already (the object was called in this process)."""
    return Reply(value=value, then=then)


class Forwarder:
    """The object of the other process: ``forwarder.name(*args)`` sends the call and returns
    None, or a ``Reply`` for a name in ``asks``. Once that process has stopped (it says
    why), a call or an answer raises SystemExit(1): this process leaves quietly."""

    def __init__(self, conn: Any, asks: frozenset[str]) -> None:
        self._conn, self._asks = conn, asks
        self._waiting: list[Reply] = []  # asked, answer not yet read (answers come in order)

    def __getattr__(self, name: str) -> Callable[..., Reply | None]:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Reply | None:
            answered = name in self._asks
            try:
                self._conn.send((name, args, kwargs, answered))
            except OSError:
                raise SystemExit(1) from None
            if not answered:
                return None
            reply = Reply(self)
            self._waiting.append(reply)
            return reply

        return call

    def read_answer(self) -> None:
        """Read the answer of the oldest ask still waiting."""
        reply = self._waiting.pop(0)
        try:
            reply._value, reply._done = self._conn.recv(), True
        except (OSError, EOFError):
            raise SystemExit(1) from None


_inherited: list[Any] = []  # the worker's end of its pipe: closed in processes it forks


def forget_parent() -> None:
    """In a process forked from the worker: close the inherited pipe, so that the worker's
    end is seen when the worker ends."""
    while _inherited:
        _inherited.pop().close()


class Worker:
    """``work(forwarder)`` in a forked child; ``calls()`` yields what it sends until it has
    ended, ``answer`` replies to an ask, ``status()`` is its exit status (-N: signal N)."""

    def __init__(self, work: Callable[[Forwarder], int], asks: frozenset[str]) -> None:
        import multiprocessing

        mine, theirs = multiprocessing.Pipe()
        pid = os.fork()
        if pid == 0:
            mine.close()
            _inherited.append(theirs)
            watch_parent()  # the command gone (kill -9): nothing left to record for
            code = 1
            try:
                code = work(Forwarder(theirs, asks))
            except BaseException:  # a bug: its traceback, as one process would show it
                import traceback

                traceback.print_exc()
            # the interpreter's own exit, up through the frames it was forked in (they let
            # SystemExit pass): the exit hooks the work registered run here (joblib's
            # workers and folders, Ray)
            startup.exit(code if isinstance(code, int) else 1)
        theirs.close()
        self.pid, self._conn = pid, mine
        self._status: int | None = None

    def calls(self, poll: float = 0.2) -> Iterator[Call | None]:
        """Its calls in order, and None after ``poll`` seconds without one (a moment to look
        at signals); ends once the worker has ended and everything it sent is read."""
        while True:
            try:
                if self._conn.poll(poll):
                    yield self._conn.recv()
                elif self.ended():
                    return
                else:
                    yield None
            except (EOFError, OSError):
                return

    def answer(self, value: Any) -> None:
        try:
            self._conn.send(value)
        except OSError:  # it has ended meanwhile
            pass

    def ended(self) -> bool:
        if self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._status = os.waitstatus_to_exitcode(status)
        return self._status is not None

    def status(self) -> int:
        if self._status is None:
            self._status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return int(self._status)

    def send_signal(self, signum: int) -> None:
        if not self.ended():
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, grace: float = 5.0) -> int:
        """End it: the pipe closed (a worker reading an answer or writing into a full pipe
        stops there), SIGTERM, SIGKILL after ``grace`` s."""
        self._conn.close()
        self.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while not self.ended():
            if time.monotonic() > deadline:
                self.send_signal(signal.SIGKILL)
                return self.status()
            time.sleep(0.02)
        return self.status()


def watch_parent(then: Callable[[], None] | None = None, interval: float = 0.5) -> None:
    """Once the process that started this one is gone (killed), call ``then`` (default:
    leave at once): a worker is not left running for nobody."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        (then or (lambda: os._exit(1)))()

    threading.Thread(target=watch, name="rnnlab-watch-parent", daemon=True).start()


def flush() -> None:
    """Flush stdout and stderr, whatever state they are in (closed, a reader gone)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
