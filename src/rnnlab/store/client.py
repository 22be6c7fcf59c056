"""One MlflowClient per store and process: a fresh SQLite store created once (under a
lock: racing migrations break each other), a server checked for an answer and its version
first, the journal of waiting run ends applied.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from urllib.parse import urlsplit

from mlflow.tracking import MlflowClient

from rnnlab import store
from rnnlab.proc import startup
from rnnlab.store import pending
from rnnlab.store.uris import (
    DATABASES,
    DB_PORTS,
    StoreError,
    reason,
    redact,
    resolve_uri,
    sqlite_path,
)


@functools.cache
def _sqlite_settings() -> None:
    """WAL journal (the UI reads while a sweep writes; writers wait less) and NORMAL
    sync (safe with WAL) on every SQLite connection, through SQLAlchemy's public events."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()


_clients: dict[str, MlflowClient] = {}  # one per store and process: opened (and locked) once


def client_for(uri: str, create: bool = True) -> MlflowClient:
    """A client on the store at ``uri`` (MLflow's process-wide tracking URI is left alone).

    Opening an SQLite store runs its schema migrations; two processes doing that at once
    on a fresh file break each other, so they take turns under a lock file beside it.
    ``create=False`` refuses to create a missing SQLite store (the helper commands only
    read). Raises StoreError with a one-line reason when the store cannot be used.
    """
    uri = resolve_uri(uri)
    store.settings()
    if uri in _clients:
        return _clients[uri]
    client = _open(uri, create)
    pending.apply(client)
    startup.settle_gc()  # start-up is over once the store opens
    return _clients.setdefault(uri, client)


def _open(uri: str, create: bool) -> MlflowClient:
    scheme = uri.split(":", 1)[0].split("+")[0] if ":" in uri else ""
    if scheme not in ("sqlite", "http", "https", "databricks", *DATABASES):
        raise StoreError(
            f"tracking.uri={redact(uri)!r} is not allowed: a database URI "
            "(sqlite:///path/mlflow.db, postgresql://...) or a tracking server "
            "(http://host:port)"
        )
    path = sqlite_path(uri)
    if path is None:
        if scheme in DATABASES:
            _reachable(uri, scheme)  # MLflow would retry an unreachable database for ~2 min
        try:
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
        except Exception as exc:
            if scheme in DATABASES:
                why = reason(exc)
                raise StoreError(f"cannot use the MLflow store {redact(uri)}: {why}") from None
            raise StoreError(
                f"the tracking server at {redact(uri)} does not answer as an MLflow server "
                f"({reason(exc)})"
            ) from None
        if scheme in ("http", "https"):
            _check_server_version(uri)
        return client
    if not path.exists() and not create:
        raise StoreError(f"no MLflow store at {path}")
    if path.is_dir():
        raise StoreError(f"tracking.uri={redact(uri)!r} names a folder, not an SQLite file")
    if path.exists() and path.stat().st_size:
        # MLflow retries a file it cannot read as a database for ~100 s: look first
        try:
            with open(path, "rb") as f:
                header = f.read(16)
        except OSError as exc:
            raise StoreError(f"cannot use the MLflow store {path}: {exc.strerror}") from None
        if header != b"SQLite format 3\x00":
            raise StoreError(
                f"cannot use the MLflow store {path}: the file is not an SQLite database (corrupt?)"
            )
    _sqlite_settings()
    try:
        if not path.exists() or not path.stat().st_size:  # a new store: made once, whole
            from filelock import FileLock

            path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(path) + ".lock", timeout=LOCK_WAIT):
                if not path.exists() or not path.stat().st_size:
                    _create_sqlite(path)
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except Exception as exc:
        raise StoreError(f"cannot use the MLflow store {path}: {reason(exc)}") from None
    return client


# What rnnlab needs of a tracking server, and the MLflow release that brought it.
MIN_SERVER = ((2, 4), "dataset inputs (runs/log-inputs), which every run records")
LOGGED_MODELS = (3, 0)  # MLflow 3's logged models; before, a model is a run's artifacts
_server_versions: dict[str, tuple[int, ...] | None] = {}  # by URI: None where unknown


def server_version(uri: str) -> tuple[int, ...] | None:
    """The MLflow release a tracking server runs (its ``GET /version``), None where it does
    not say (asked once per server and process)."""
    if uri not in _server_versions:
        import re

        from mlflow.utils.rest_utils import MlflowHostCreds, http_request

        creds = MlflowHostCreds(
            uri,
            username=os.environ.get("MLFLOW_TRACKING_USERNAME"),
            password=os.environ.get("MLFLOW_TRACKING_PASSWORD"),
            token=os.environ.get("MLFLOW_TRACKING_TOKEN"),
        )
        found = None
        try:
            answer = http_request(creds, "/version", "GET", max_retries=0, timeout=5)
            match = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?\S*", answer.text.strip())
            if answer.ok and match:
                found = tuple(int(n) for n in match.groups(default="0"))
        except Exception:  # a server that does not say (a proxy in front of it)
            pass
        _server_versions[uri] = found
    return _server_versions[uri]


def _check_server_version(uri: str) -> None:
    """StoreError naming the server's version and what is missing, for a server older
    than rnnlab needs (before any run exists)."""
    found = server_version(uri)
    (needed, what) = MIN_SERVER
    if found is not None and found[:2] < needed:
        shown = ".".join(map(str, found))
        raise StoreError(
            f"the tracking server at {redact(uri)} runs MLflow {shown}; rnnlab needs "
            f"{needed[0]}.{needed[1]} or newer for {what}"
        )


def has_logged_models(client: MlflowClient) -> bool:
    """Whether the store has MLflow 3's logged models: a database store (this MLflow is
    3.x) or a tracking server of 3.0 or newer. A server that does not say gets a model as
    run artifacts, which every server takes."""
    uri = client.tracking_uri
    if not uri.startswith(("http:", "https:")):
        return True
    found = server_version(uri)
    return found is not None and found[:2] >= LOGGED_MODELS


LOCK_WAIT = 120  # s: another process creating the same store takes ~1-2 s
CREATING = ".creating-"  # a store being made: <folder>/.<name>.creating-<pid>


def _create_sqlite(path: Path) -> None:
    """Make a fresh SQLite store at ``path`` whole or not at all: MLflow's schema
    migrations (~50 steps, ~1 s) run on a file of its own beside it, which replaces
    ``path`` in one rename once complete. A process stopped during the migrations (a
    signal, kill -9, a full disk) leaves only that file, which the next creation (under
    the same lock) removes. Called with the store's lock held."""
    import sqlite3

    for stale in path.parent.glob(f".{path.name}{CREATING}*"):
        stale.unlink(missing_ok=True)
    work = path.with_name(f".{path.name}{CREATING}{os.getpid()}")
    try:
        from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        # the store MLflow would make (its Default experiment's artifacts in ./mlruns),
        # its connections closed before the file moves
        store = SqlAlchemyStore(f"sqlite:///{work}", DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
        store.engine.dispose()
        with contextlib.closing(sqlite3.connect(work)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file itself
            db.execute("PRAGMA journal_mode=DELETE")
        os.replace(work, path)
    finally:
        for leftover in (work, Path(f"{work}-wal"), Path(f"{work}-shm")):
            leftover.unlink(missing_ok=True)


def _reachable(uri: str, scheme: str, timeout: float = 5.0) -> None:
    """StoreError unless the database server of ``uri`` takes a TCP connection within
    ``timeout`` seconds (a socket path or no host: left to the driver)."""
    import socket

    parts = urlsplit(uri)
    if not parts.hostname:
        return
    port = parts.port or DB_PORTS[scheme]
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise StoreError(
            f"cannot use the MLflow store {redact(uri)}: {reason(exc)} ({parts.hostname}:{port})"
        ) from None


def forget(uri: str) -> None:
    """Drop the cached client of ``uri`` (a store removed under a long-lived process)."""
    _clients.pop(resolve_uri(uri), None)
