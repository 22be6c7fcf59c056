"""Everything MLflow: the store, the standard tags, and what gets logged.

The only module (with ``lifecycle`` and ``pyfunc_model``) that imports mlflow. Runs
are handled through an explicit ``MlflowClient`` and run id (no global "active run"),
so the same code serves a single job, a job inside a sweep, and the Python API.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import getpass
import hashlib
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

from rnnlab import console


def settings() -> None:
    """MLflow settings rnnlab runs with, unless the user set them (environment variables:
    MLflow reads them per request). A tracking server that does not answer should cost
    seconds, not MLflow's default of 7 retries with a 2x backoff and a 120 s timeout
    (about 4 minutes): a request waits at most 5 s to connect or for an answer, and is
    tried 3 times (~5 s when the server is down, <20 s when its host does not answer).
    Our commands print where a run is: MLflow's own "View run ... at" lines (http
    stores) would follow every child of a sweep. No telemetry (a closed network).
    The Python API restores the environment it found after each call."""
    for key, value in (
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "5"),
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0.5"),
        ("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true"),
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ):
        os.environ.setdefault(key, value)


settings()  # before MLflow's import (which reads the telemetry setting)

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from mlflow.entities import Metric, Param, RunTag, ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

METRIC_BATCH = 1000  # MLflow's limit of metrics per log_batch call
PARAM_BATCH = 100  # ... of params per call
TAG_BATCH = 100  # ... of tags per call
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"  # a run's (or experiment's) description in the UI
RUN_NAME_TAG = "mlflow.runName"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"

DEFAULT_URI = "sqlite:///outputs/mlflow.db"  # as conf/tracking/local.yaml


class StoreError(RuntimeError):
    """The store cannot be used (unreachable server, unreadable file): one line."""


def default_uri() -> str:
    """The store every rnnlab entry point uses unless told otherwise (a ``tracking.uri``
    override, ``--tracking-uri``, ``tracking_uri=``): ``$MLFLOW_TRACKING_URI`` (which
    ``mlflow.set_tracking_uri`` also sets), else ``sqlite:///outputs/mlflow.db`` under the
    current folder. conf/tracking/local.yaml spells the same rule."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def is_server(uri: str) -> bool:
    """Whether ``uri`` names a tracking server (which decides where artifacts go)."""
    return uri.split(":", 1)[0] in ("http", "https", "databricks")


@contextlib.contextmanager
def fluent_uri(uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking URI set to ``uri`` for the block (the model's
    logging goes through MLflow's fluent functions), then put back as it was, with the
    ``MLFLOW_TRACKING_URI`` variable that ``mlflow.set_tracking_uri`` also writes."""
    from mlflow.tracking._tracking_service import utils

    before, env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env


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


def settle_gc() -> None:
    """Start-up is over (collection was turned off for its imports): keep the objects its
    imports made (MLflow's ~1M) out of every later garbage collection, and collect
    again (``app.cli`` turns collection off while it imports: it cost ~0.4 s of
    MLflow's import; and a full collection walking them all cost ~0.15 s in one of
    every two runs' metric logging)."""
    if gc.isenabled():  # not a start-up of rnnlab's own (the Python API's caller's process)
        return
    gc.freeze()
    gc.enable()


_clients: dict[str, MlflowClient] = {}  # one per store and process: opened (and locked) once


def client_for(uri: str, create: bool = True) -> MlflowClient:
    """A client on the store at ``uri`` (MLflow's process-wide tracking URI is left alone).

    Opening an SQLite store runs its schema migrations; two processes doing that at once
    on a fresh file break each other, so they take turns under a lock file beside it.
    ``create=False`` refuses to create a missing SQLite store (the helper commands only
    read). Raises StoreError with a one-line reason when the store cannot be used.
    """
    uri = resolve_uri(uri)
    settings()
    if uri in _clients:
        return _clients[uri]
    client = _open(uri, create)
    Pending.apply(client)
    settle_gc()
    return _clients.setdefault(uri, client)


DATABASES = ("postgresql", "mysql", "mssql")  # database stores besides SQLite
DB_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


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
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(path) + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not path.exists() or not path.stat().st_size:
                    _create_sqlite(path)
                client = MlflowClient(tracking_uri=uri)
                client.search_experiments(max_results=1)  # opens the store: migrations run
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    except Exception as exc:
        raise StoreError(f"cannot use the MLflow store {path}: {reason(exc)}") from None
    return client


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


def is_store_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the store (a database, a server, the artifact folder) could
    not take a write or a read, rather than something of rnnlab's or the user's."""
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
    chain, seen = [], exc
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


class Pending:
    """End states that a store could not take when a run ended (a full disk, a server
    gone), kept in a local journal (``$RNNLAB_STATE_DIR``, default
    ``~/.local/state/rnnlab/pending.jsonl``: one JSON object a line, the store's URI
    without its password) and written on the next start against that store. A line
    that cannot be read is set aside in ``pending.jsonl.bad`` with one line saying so."""

    STATUSES = ("FINISHED", "FAILED", "KILLED")

    @staticmethod
    def path() -> Path:
        root = os.environ.get("RNNLAB_STATE_DIR") or Path.home() / ".local/state/rnnlab"
        return Path(root) / "pending.jsonl"

    @classmethod
    def add(cls, uri: str, run_id: str, status: str, error: str | None) -> None:
        import json

        entry = {
            "uri": redact(resolve_uri(uri)),
            "run_id": run_id,
            "status": status,
            "error": console.redact(error) if error else error,
        }
        try:
            cls.path().parent.mkdir(parents=True, exist_ok=True)
            with open(cls.path(), "a") as f:
                f.write(json.dumps(entry) + "\n")
        except OSError:
            pass  # nowhere to keep it: rnnlab-doctor still finds the run by its dead owner

    @classmethod
    def _read(cls, raw: bytes) -> tuple[list[tuple[str, dict]], list[bytes]]:
        """(readable entries with their line, unreadable lines) of the journal's bytes."""
        import json

        good, bad = [], []
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
                entry = json.loads(text)
                ok = (
                    isinstance(entry, dict)
                    and all(isinstance(entry.get(k), str) for k in ("uri", "run_id", "status"))
                    and entry["status"] in cls.STATUSES
                    and isinstance(entry.get("error"), str | type(None))
                )
            except ValueError:  # not UTF-8, not JSON
                ok = False
            if ok:
                good.append((text, entry))
            else:
                bad.append(line)
        return good, bad

    @classmethod
    def apply(cls, client: MlflowClient) -> None:
        """Write this store's waiting end states; keep the others (and any that fail)."""
        path = cls.path()
        try:
            raw = path.read_bytes()
        except OSError:
            return
        good, bad = cls._read(raw)
        uri, keep = redact(resolve_uri(client.tracking_uri)), []
        for line, entry in good:
            if entry["uri"] != uri:
                keep.append(line)
                continue
            try:
                run = client.get_run(entry["run_id"])
                if run.info.status == "RUNNING":
                    if entry.get("error"):
                        client.set_tag(entry["run_id"], "error", entry["error"][:5000])
                    client.set_terminated(entry["run_id"], entry["status"])
                    console.say(
                        f"rnnlab: recorded run {entry['run_id']} as {entry['status']} "
                        "(its end could not be written when it stopped)",
                        err=True,
                    )
            except mlflow.exceptions.RestException:
                continue  # the run is gone from the store: nothing to record
            except Exception:
                keep.append(line)
        try:
            if bad:
                aside = path.with_name(path.name + ".bad")
                with open(aside, "ab") as f:
                    f.write(b"".join(line + b"\n" for line in bad))
                console.say(
                    f"rnnlab: {len(bad)} line(s) of the journal {path} could not be read; "
                    f"set aside in {aside}",
                    err=True,
                )
            if bad or len(keep) != len(good):
                path.write_text("".join(f"{ln}\n" for ln in keep))
        except OSError:
            pass


def forget(uri: str) -> None:
    """Drop the cached client of ``uri`` (a store removed under a long-lived process)."""
    _clients.pop(resolve_uri(uri), None)


def ensure_experiment(
    client: MlflowClient, name: str, artifact_root: str | None, description: str | None = None
) -> str:
    """The id of experiment ``name``, created (with its artifact folder and description)
    if missing; a description is added to an existing experiment that has none. A local
    artifact folder that cannot be written is refused (StoreError) before an experiment
    is created with it: it would stay the experiment's for good."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        uri, eid = redact(client.tracking_uri), experiment.experiment_id
        raise StoreError(
            f"tracking.experiment={name!r} is a deleted experiment (id {eid}) in {uri}: "
            f"restore it (MLFLOW_TRACKING_URI={uri} uv run mlflow experiments restore "
            f"--experiment-id {eid}), delete it for good (uv run mlflow gc "
            f"--backend-store-uri {uri} --experiment-ids {eid}), or choose another "
            "tracking.experiment"
        )
    if is_server(client.tracking_uri):
        artifact_root = None  # a tracking server keeps artifacts where it is told to
    if experiment is None:
        location = artifact_location(artifact_root)
        problem = _unwritable(location)
        if problem:
            raise StoreError(
                f"tracking.artifact_root={artifact_root!r} is not allowed: a folder rnnlab "
                f"can write ({problem})"
            )
        # a model-training experiment: the UI opens it on its runs, not the GenAI overview
        tags = {EXPERIMENT_KIND_TAG: "custom_model_development"}
        if description:
            tags[NOTE_TAG] = description
        try:
            return client.create_experiment(name, artifact_location=location, tags=tags)
        except mlflow.exceptions.MlflowException:
            # Another process created it between our look-up and create.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    problem = _unwritable(experiment.artifact_location)
    if problem:
        raise StoreError(
            f"experiment {name!r} keeps its artifacts in {experiment.artifact_location}, "
            f"which cannot be written ({problem}): make it writable, or use another "
            "tracking.experiment"
        )
    if description:
        update_experiment_tag(
            client, experiment.experiment_id, NOTE_TAG, lambda old: None if old else description
        )
    return experiment.experiment_id


def update_experiment_tag(
    client: MlflowClient,
    experiment_id: str,
    key: str,
    update: Callable[[str | None], str | None],
    attempts: int = 5,
) -> None:
    """Set experiment tag ``key`` to ``update(value now)`` (None: leave it), safely when
    other processes update it at once. MLflow's ``set_experiment_tag`` reads, then
    inserts: two writers of a new tag race, and the later fails (a UNIQUE constraint in
    SQL stores); a read-modify-write can also lose the other's change. So it reads,
    writes, reads back, and goes round again (``attempts`` times at most) until the tag
    holds a value ``update`` leaves alone. Raises the store's last error when it never
    settles."""
    for attempt in range(attempts):
        value = update(client.get_experiment(experiment_id).tags.get(key))
        if value is None:
            return
        try:
            client.set_experiment_tag(experiment_id, key, value)
        except mlflow.exceptions.MlflowException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))  # another process wrote it at this moment
            continue
        if update(client.get_experiment(experiment_id).tags.get(key)) is None:
            return


def _unwritable(location: str | None) -> str | None:
    """Why a local artifact location cannot be written (None if it can, or is remote)."""
    if not location or not location.startswith("file:"):
        return None
    from urllib.parse import unquote, urlparse

    folder = Path(unquote(urlparse(location).path))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".rnnlab-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


# --- what every run records about where it came from -----------------------------------


@functools.cache
def git_state() -> dict[str, str]:
    """The commit of the checkout rnnlab runs from, and whether its tree was dirty."""
    root = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown"}
    return {
        "git_commit": commit,
        "git_dirty": str(dirty).lower(),
        "mlflow.source.git.commit": commit,
    }


@functools.cache
def lineage() -> dict[str, str]:
    """What it takes to reproduce a run: library versions and the lock file's hash."""
    tags = {
        f"version.{pkg}": version(pkg)
        for pkg in ("numpy", "hydra-core", "omegaconf", "mlflow", "matplotlib")
    }
    lock = Path(__file__).resolve().parents[2] / "uv.lock"
    if lock.exists():
        tags["uv_lock_sha256"] = hashlib.sha256(lock.read_bytes()).hexdigest()
    return tags


def source_tags(source: str) -> dict[str, str]:
    """MLflow's standard columns: Source (the command that made the run), its type, and
    Created by; plus the checkout's commit and the libraries' versions."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (a container without passwd)
        user = "unknown"
    return {
        "mlflow.source.name": source,
        "mlflow.source.type": "LOCAL",
        "mlflow.user": user,
        **git_state(),
        **lineage(),
    }


# --- logging ---------------------------------------------------------------------------


def _shielded(write):
    """``write`` is not cut in two by a signal (``lifecycle.shielded``): a signal during
    it takes effect when it returns."""

    @functools.wraps(write)
    def whole(*args, **kwargs):
        from rnnlab import lifecycle

        with lifecycle.shielded():
            return write(*args, **kwargs)

    return whole


@_shielded
def log_batch(
    client: MlflowClient,
    run_id: str,
    metrics: Iterable[Metric] = (),
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Metrics, params and tags in as few calls as MLflow's batch limits allow."""
    metrics = list(metrics)
    params_ = [Param(k, str(v)) for k, v in sorted((params or {}).items())]
    tags_ = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    while metrics or params_ or tags_:
        client.log_batch(
            run_id,
            metrics=metrics[:METRIC_BATCH],
            params=params_[:PARAM_BATCH],
            tags=tags_[:TAG_BATCH],
        )
        metrics, params_, tags_ = (
            metrics[METRIC_BATCH:],
            params_[PARAM_BATCH:],
            tags_[TAG_BATCH:],
        )


def series(columns: Mapping[str, np.ndarray], now: int | None = None) -> list[Metric]:
    """Per-iteration metrics, step = the index in each series."""
    now = now or int(time.time() * 1000)
    return [
        Metric(key, v, now, step)
        for key, values in columns.items()
        for step, v in enumerate(np.asarray(values, dtype=float).tolist())
    ]


def scalars(values: Mapping[str, float | None], now: int | None = None) -> list[Metric]:
    """Summary metrics at step 0; a missing or non-finite value is left out."""
    now = now or int(time.time() * 1000)
    return [
        Metric(k, float(v), now, 0) for k, v in values.items() if v is not None and math.isfinite(v)
    ]


@_shielded
def log_dataset(client: MlflowClient, run_id: str, name: str, digest: str, X, t) -> None:
    """The training data as an MLflow dataset input (with its digest)."""
    from mlflow.entities import DatasetInput, InputTag

    ds = mlflow.data.from_numpy(X, targets=t, name=name, digest=digest)
    inputs = [DatasetInput(ds._to_mlflow_entity(), [InputTag("mlflow.data.context", "training")])]
    for attempt in range(DATASET_ATTEMPTS):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except mlflow.exceptions.MlflowException as exc:
            # MLflow's store looks the dataset up, then inserts it: two runs logging the
            # same data at once (a parallel sweep on a server with PostgreSQL) can both
            # miss it, and the second insert fails on the dataset's key. That transaction
            # rolled back whole; the row is there now, and a retry links to it.
            if not _duplicate_dataset(exc) or attempt == DATASET_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


DATASET_ATTEMPTS = 4


def _duplicate_dataset(exc: Exception) -> bool:
    text = str(exc)
    return "dataset" in text.lower() and any(
        mark in text for mark in ("UniqueViolation", "duplicate key", "UNIQUE constraint failed")
    )


@_shielded
def log_files(client: MlflowClient, run_id: str, folder: Path, artifact_path: str | None) -> None:
    """Every file under ``folder`` as artifacts under ``artifact_path``."""
    client.log_artifacts(run_id, str(folder), artifact_path)


@_shielded
def log_text(client: MlflowClient, run_id: str, text: str, path: str) -> None:
    client.log_text(run_id, text, path)


@_shielded
def log_table(client: MlflowClient, run_id: str, table: Mapping[str, list], path: str) -> None:
    client.log_table(run_id, data=dict(table), artifact_file=path)


def download(client: MlflowClient, run_id: str, artifact_path: str, dest: Path) -> Path:
    """Fetch one artifact (file or folder) of a run into ``dest``; return its local path.
    Raises StoreError when the store records the run's artifacts in a local folder that
    does not exist (a store moved or copied without them), LookupError when the run
    has no such artifact."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return Path(client.download_artifacts(run_id, artifact_path, str(dest)))
    except Exception as exc:
        missing = missing_artifact_root(client, run_id)
        if missing:
            raise StoreError(missing) from None
        raise LookupError(f"run {run_id} has no artifact {artifact_path}") from exc


def missing_artifact_root(client: MlflowClient, run_id: str) -> str | None:
    """Why a run's artifacts cannot be read when the store says they are in a local
    folder that is not there (None otherwise): the store keeps absolute locations, so a
    store moved or copied elsewhere still points at the old place."""
    from urllib.parse import unquote, urlparse

    try:
        run = client.get_run(run_id)
        experiment = client.get_experiment(run.info.experiment_id)
    except Exception:
        return None

    def local(uri: str | None) -> Path | None:
        if not uri or ("://" in uri and not uri.startswith("file:")):
            return None
        return Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)

    folder, root = local(run.info.artifact_uri), local(experiment.artifact_location)
    # a run that logged nothing has no folder either; its experiment's folder then exists
    if folder is None or root is None or folder.exists() or root.exists():
        return None
    return (
        f"run {run_id}'s artifacts are expected at {folder} (where the store says they "
        "are), which does not exist: the store was probably moved or copied without its "
        "artifact folder, or that folder was moved; put it back there (or link it)"
    )


def get_run(client: MlflowClient, run_id: str):
    """The run; LookupError (one line) if the store has no such run, StoreError if the
    store could not answer (a server timing out, a database error)."""
    try:
        return client.get_run(run_id)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise StoreError(
                f"cannot read run {run_id!r} from {redact(client.tracking_uri)}: {reason(exc)}"
            ) from None
        raise LookupError(f"no run {run_id!r} in {redact(client.tracking_uri)}") from exc


def search(
    client: MlflowClient,
    experiment_ids: list[str],
    filter_string: str = "",
    every_lifecycle: bool = False,
) -> list:
    """Every run matching ``filter_string``, oldest first, all pages; deleted runs too
    with ``every_lifecycle``."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            experiment_ids,
            filter_string=filter_string,
            run_view_type=ViewType.ALL if every_lifecycle else ViewType.ACTIVE_ONLY,
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    """Every run whose parent is ``parent_run_id``, oldest first."""
    return search(client, [experiment_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}'")


def metric_history(client: MlflowClient, run_id: str, key: str) -> np.ndarray:
    """A metric's values ordered by step."""
    history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
    return np.array([m.value for m in history], dtype=float)


# --- the model -------------------------------------------------------------------------


@contextlib.contextmanager
def _model_files_only() -> Iterator[None]:
    """While a model is logged: MLflow copies no uv project files (``uv.lock``,
    ``pyproject.toml``: it would find the checkout's) and Python writes no bytecode into
    the model's folder (MLflow imports the model's code to check it; rnnlab turns
    bytecode caching on for its start-up, see ``rnnlab/__init__.py``)."""
    before_env = os.environ.get("MLFLOW_UV_AUTO_DETECT")
    before_bytecode = sys.dont_write_bytecode
    os.environ["MLFLOW_UV_AUTO_DETECT"] = "false"
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before_bytecode
        if before_env is None:
            os.environ.pop("MLFLOW_UV_AUTO_DETECT", None)
        else:
            os.environ["MLFLOW_UV_AUTO_DETECT"] = before_env


MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")


@_shielded
def log_model(
    client: MlflowClient,
    experiment_id: str,
    run_id: str,
    wx: float,
    wrec: float,
    example,
    params: Mapping[str, str] | None = None,
) -> None:
    """The trained network as the run's pyfunc model ``model`` (``runs:/RUN_ID/model``):
    code (no pickle), the weights as an artifact, a signature and an input example, and
    its requirements given (MLflow infers nothing and copies no lock file)."""
    import json
    import tempfile

    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    example = np.atleast_2d(np.asarray(example, dtype=float))
    # any number of sequences of any length in, one sum per sequence out
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float64"), (-1, -1))]),
        outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]),
    )
    # The logged model is created here, in the run's experiment: left to MLflow it would
    # go to the process's "active" experiment (Default, under ./mlruns).
    model = client.create_logged_model(
        experiment_id, name="model", source_run_id=run_id, params=dict(params or {})
    )
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.json"
        weights.write_text(json.dumps({"wx": float(wx), "wrec": float(wrec)}))
        # Model.log with an explicit run id: no fluent "active run" is resumed (and ended);
        # it logs through MLflow's process-wide store, set to this one for the call only
        with fluent_uri(client.tracking_uri), _model_files_only():
            mlflow.models.Model.log(
                artifact_path=None,
                name="model",
                flavor=mlflow.pyfunc,
                run_id=run_id,
                model_id=model.model_id,
                python_model=str(MODEL_CODE),
                artifacts={"weights": str(weights)},
                signature=signature,
                input_example=example,
                pip_requirements=[f"numpy=={version('numpy')}", f"mlflow=={version('mlflow')}"],
            )
