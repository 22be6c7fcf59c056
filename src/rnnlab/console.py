"""What rnnlab's commands print: the lab's lines and where runs are, nothing else. ``quiet``
silences the libraries' log lines, warnings and progress bars (unless ``-v``), ``error``
prints a user's mistake as one line, ``redact`` hides passwords in URIs."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings
from typing import Any

VERBOSE_ENV = "RNNLAB_VERBOSE"
# Libraries whose log lines and warnings are for their own developers, not our users.
NOISY = ("mlflow", "alembic", "sqlalchemy", "hydra_plugins", "ray", "joblib", "urllib3")


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false")


def take_verbose_flag(argv: list[str]) -> list[str]:
    """Remove ``-v``/``--verbose`` from ``argv`` (setting RNNLAB_VERBOSE, which worker
    processes inherit) and return the rest."""
    rest = [a for a in argv if a not in ("-v", "--verbose")]
    if len(rest) != len(argv):
        os.environ[VERBOSE_ENV] = "1"
    return rest


_show_warning = warnings.showwarning


def _from_noisy_library(filename: str) -> bool:
    parts = filename.replace("\\", "/").split("/")
    return any(p in NOISY for p in parts)


def _showwarning(message, category, filename, lineno, file=None, line=None):
    # MLflow re-enables its UserWarnings inside its own calls (warnings.catch_warnings
    # with simplefilter), so filters cannot hold them; the display can.
    if _from_noisy_library(filename):
        return
    _show_warning(message, category, filename, lineno, file, line)


OTHERS = r"(?!rnnlab(\.|$))"  # a warning's module that is not rnnlab's


def others_warn_only() -> None:
    """Warnings made errors (``-W error``, ``PYTHONWARNINGS=error::DeprecationWarning``)
    stay errors in rnnlab's own modules; the libraries' are shown instead, once per
    place: a dependency's deprecation is not rnnlab's failure."""
    for action, _message, category, module, _lineno in list(warnings.filters):
        if action == "error" and (module is None or module.pattern in ("", ".*")):
            for cls in category if isinstance(category, tuple) else (category,):
                warnings.filterwarnings("default", category=cls, module=OTHERS)


def quiet() -> None:
    """Silence the libraries' chatter for this process, unless verbose or the user asked
    for warnings (``-W``, ``PYTHONWARNINGS``: then the libraries' are shown). Every entry
    point (the commands, the Python API, a sweep's worker) calls it first."""
    others_warn_only()
    if verbose():
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # CRITICAL: MLflow logs its store's errors with their tracebacks at ERROR; rnnlab
    # reports them itself, in one line
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "CRITICAL")
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if not sys.warnoptions:
        warnings.showwarning = _showwarning
    # a hydra.searchpath folder that is not there: rnnlab says so itself, in one line
    warnings.filterwarnings("ignore", message=r"provider=.* is not available", category=UserWarning)


def quiet_search(sweeper_target: str) -> None:
    """Optuna's own log lines (``[I ...] A new study created in memory``, coloured, on
    stderr) off unless verbose, where the sweep is Optuna's: Optuna sets its logger to INFO
    as it is imported, so this imports it first (the sweeper is about to) and uses its
    ``logging.set_verbosity``."""
    if verbose() or "optuna" not in sweeper_target:
        return
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def error(prog: str, message: str) -> None:
    """One line on stderr: ``prog: error: message`` (credentials in URIs hidden)."""
    say(f"{prog}: error: {redact(' '.join(str(message).split()))}", err=True)


# scheme://user:password@ in any spelling Hydra or a shell gives it: Hydra escapes ':' (and
# ',', '=', ' ', brackets) with a backslash in the job overrides it makes; quotes and
# lists around it are left as they are
_CREDENTIALS = re.compile(
    r"(?P<user>[A-Za-z][\w+.-]*\\?://[^/\s:@\\'\"\[\],]+(?:\\)?:)(?P<password>[^@\s/'\"\[\]]+)@"
)


def redact(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the password hidden (``***``),
    also as Hydra escapes it (``http\\://alice\\:pw@host``), quoted, or in a list."""
    return _CREDENTIALS.sub(lambda m: f"{m['user']}***@", text)


def say(line: str, err: bool = False) -> None:
    """Print a line (credentials in URIs hidden; what the stream's encoding lacks as
    ``\\uXXXX``), ignoring a stream that is closed or whose reader has gone away."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    text = redact(line)
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        text = text.encode(encoding, "backslashreplace").decode(encoding)
    if _live:  # the live line goes; the next update draws it again, below this line
        text, _live[:] = "\r\x1b[K" + text, []
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        reader_gone(stream)
    except (OSError, ValueError):
        pass


_live: list[str] = []  # the live line shown now (at most one), on a terminal's stdout


def live_wanted(lines: int) -> bool:
    """Whether ``lines`` lines (a sweep's jobs) are better shown as one live line: on a
    terminal they would not fit on (``$LINES``, else its size), unless ``-v``; piped or
    logged, every line stays."""
    import shutil

    stream = sys.stdout
    try:
        terminal = stream is not None and stream.isatty()
    except (OSError, ValueError):
        terminal = False
    return terminal and not verbose() and lines > shutil.get_terminal_size().lines - 2


def live(text: str) -> None:
    """Show ``text`` as the live line at the terminal's bottom, in place of the one
    before; the next line ``say`` prints takes it away."""
    try:
        sys.stdout.write("\r\x1b[K" + text)
        sys.stdout.flush()
        _live[:] = [text]
    except (OSError, ValueError):
        pass


def reader_gone(stream: Any) -> None:
    """The reader of ``stream`` (a pipe: ``| head``) has gone: from now on what is written
    to it goes to the null device, so that neither a later line nor Python's last flush
    fails."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def quiet_logging_errors() -> None:
    """A log line that cannot be written (its reader gone: ``rnnlab --info | true``) is
    dropped, not reported with a traceback: ``logging.raiseExceptions`` off, as Python's
    logging documents for production (a command's first step, not the Python API's)."""
    import logging

    logging.raiseExceptions = False


def open_streams() -> None:
    """Closed standard streams (``>&-``) opened on the null device: a command goes on
    without them, its lines dropped (a command's first step, not the Python API's)."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is not None:
            continue
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        setattr(
            sys, name, open(fd, mode, encoding="utf-8", errors="backslashreplace", closefd=False)
        )


class Progress:
    """A sweep's live line on a terminal: ``[17/242] 3 diverged, 0 failed, ~41 s left``
    (the time left: the mean time a job has taken so far, times the jobs left)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.diverged, self.failed = total, 0, 0, 0
        self.started = time.monotonic()

    def job(self, diverged: bool = False, failed: bool = False) -> str:
        """Count one more job ended; the line it makes now."""
        self.done += 1
        self.diverged += diverged
        self.failed += failed
        left = (time.monotonic() - self.started) / self.done * (self.total - self.done)
        return (
            f"[{self.done}/{self.total}] {self.diverged} diverged, {self.failed} failed, "
            f"~{left:.0f} s left"
        )
