"""What rnnlab's commands print: the lab's lines and where runs are, nothing else. ``quiet``
silences the libraries' log lines, warnings and progress bars (unless ``-v``), ``error``
prints a user's mistake as one line, ``redact`` hides passwords in URIs."""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings

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


def quiet() -> None:
    """Silence the libraries' chatter for this process, unless verbose. Every entry point
    (the commands, the Python API, a sweep's worker) calls it first."""
    if verbose():
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # CRITICAL: MLflow logs its store's errors with their tracebacks at ERROR; rnnlab
    # reports them itself, in one line
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "CRITICAL")
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.showwarning = _showwarning
    # a hydra.searchpath folder that is not there: rnnlab says so itself, in one line
    warnings.filterwarnings("ignore", message=r"provider=.* is not available", category=UserWarning)


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
    """Print a line (credentials in URIs hidden), ignoring a terminal that has gone away
    (SIGHUP)."""
    try:
        print(redact(line), file=sys.stderr if err else sys.stdout, flush=True)
    except (OSError, ValueError):
        pass
