"""Where the store is: tracking URIs (default, resolved, redacted), SQLite paths,
artifact locations, and the store's errors in one line (``reason``).
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnlab import console
from rnnlab.errors import StoreError

DEFAULT_URI = "sqlite:///outputs/mlflow.db"  # as conf/tracking/local.yaml


def default_uri() -> str:
    """The store every rnnlab entry point uses unless told otherwise (a ``tracking.uri``
    override, ``--tracking-uri``, ``tracking_uri=``): ``$MLFLOW_TRACKING_URI`` (which
    ``mlflow.set_tracking_uri`` also sets), else ``sqlite:///outputs/mlflow.db`` under the
    current folder. conf/tracking/local.yaml spells the same rule."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def is_server(uri: str) -> bool:
    """Whether ``uri`` names a tracking server (which decides where artifacts go)."""
    return uri.split(":", 1)[0] in ("http", "https", "databricks")


def redact(uri: str | None) -> str:
    """``uri`` without a password (``http://user:***@host``): safe to print and log."""
    return console.redact(uri or "")


def resolve_uri(uri: str) -> str:
    """Make a relative ``sqlite:///path`` absolute against the current directory.

    MLflow would read it against whatever directory the process is in; a job that
    changes directory (or a worker process) must still find the same store.
    """
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def artifact_location(artifact_root: str | None) -> str | None:
    """An absolute file URI for a local artifact folder (None leaves it to the server)."""
    if not artifact_root:
        return None
    if "://" in artifact_root:
        return artifact_root
    return Path(artifact_root).resolve().as_uri()


DATABASES = ("postgresql", "mysql", "mssql")  # database stores besides SQLite
DB_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def gone(exc: BaseException) -> bool:
    """Whether the store said that what was asked for (a run, an experiment) is not there."""
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def is_store_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the store (a database, a server, the artifact folder) could
    not take a write or a read, rather than something of rnnlab's or the user's."""
    import mlflow
    import requests
    import sqlalchemy.exc

    return isinstance(
        exc,
        StoreError
        | mlflow.exceptions.MlflowException
        | OSError
        | requests.exceptions.RequestException
        | sqlalchemy.exc.SQLAlchemyError,
    )


# What a store's errors say, in a few words: (text in the error chain, the words for it)
_REASONS = (
    ("database or disk is full", "the disk is full"),
    ("No space left on device", "the disk is full"),
    ("readonly database", "the database is read-only"),
    ("Read-only file system", "the file system is read-only"),
    ("unable to open database file", "the database file cannot be opened"),
    ("file is not a database", "the file is not an SQLite database (corrupt?)"),
    ("database disk image is malformed", "the database is corrupt"),
    (
        "database is locked",
        "the database is locked by another process (for longer than SQLite waits)",
    ),
    ("Permission denied", "permission denied"),
    ("Connection refused", "connection refused"),
    ("Failed to establish a new connection", "cannot connect"),
    ("Name or service not known", "unknown host"),
    ("Temporary failure in name resolution", "unknown host"),
    ("timed out", "no answer in time"),
    ("RemoteDisconnected", "the server closed the connection"),
    ("Connection aborted", "the server closed the connection"),
    ("Connection reset", "the server closed the connection"),
)


def reason(exc: BaseException) -> str:
    """What went wrong, in a few words (a store's common failures by name; otherwise the
    first line of the error), with no credentials."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for e in chain:
        if isinstance(e, ModuleNotFoundError):
            return f"its database driver ({e.name}) is not installed"
    text = " | ".join(f"{type(e).__name__}: {e}" for e in chain)
    for needle, words in _REASONS:
        if needle in text:
            return words
    first = console.redact(str(exc).strip() or type(exc).__name__).splitlines()[0].strip()
    return first[:200]
