"""The Python API, ``run``, ``load`` and ``compare``, for scripts and notebooks: each call
leaves the caller's process as it found it (``guest``). Inside the caller's own MLflow run
on the same store, ``run`` records a child of it, as ``start_run(nested=True)`` would."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any


def _loggers() -> dict[str, tuple[int, list, bool, bool]]:
    manager = logging.root.manager
    found: dict[str, logging.Logger] = {"": logging.root}
    found.update({n: lg for n, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)})
    return {n: (lg.level, list(lg.handlers), lg.propagate, lg.disabled) for n, lg in found.items()}


@contextlib.contextmanager
def guest() -> Iterator[None]:
    """Run the block as a guest in the caller's process: whatever it changes of the
    process-wide state (see the module's docstring) is put back afterwards, and rnnlab's
    quiet console (no MLflow log lines, warnings or progress bars) holds only inside."""
    from rnnlab import console

    filters, showwarning = list(warnings.filters), warnings.showwarning
    console.others_warn_only()  # (a caller's -W error: their imports' warnings are not ours)
    import hydra  # noqa: F401  (imported first: their import-time set-up is theirs)
    import mlflow  # noqa: F401

    from rnnlab.frameworks import hydra_restored
    from rnnlab.proc import signals

    state: dict[str, Any] = {
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "loggers": _loggers(),
        "filters": filters,
        "showwarning": showwarning,
        "signals": signals.handlers(),
        "gc": gc.isenabled(),
    }
    console.quiet()
    signals.install()  # a Ctrl-C meanwhile ends the call's run KILLED, then reaches the caller
    try:
        with hydra_restored():
            yield
    finally:
        os.environ.clear()
        os.environ.update(state["environ"])
        if os.getcwd() != state["cwd"]:
            os.chdir(state["cwd"])
        manager = logging.root.manager
        for name, (level, handlers, propagate, disabled) in state["loggers"].items():
            lg = logging.root if name == "" else manager.loggerDict.get(name)
            if isinstance(lg, logging.Logger):
                lg.setLevel(level)
                lg.handlers[:] = handlers
                lg.propagate, lg.disabled = propagate, disabled
        for name, lg in list(manager.loggerDict.items()):  # loggers made during the call
            if isinstance(lg, logging.Logger) and name not in state["loggers"]:
                if name.split(".")[0] in console.NOISY:
                    lg.setLevel(logging.NOTSET)
        warnings.filters[:] = state["filters"]  # type: ignore[index]
        warnings.showwarning = state["showwarning"]
        signals.restore(state["signals"])
        (gc.enable if state["gc"] else gc.disable)()


def run(overrides: Sequence[str] = (), output_dir: str | Path | None = None):
    """Compose the config the ``rnnlab`` command would (same overrides, same grammar,
    ``hydra.searchpath=[...]`` for config folders of one's own), train, log one MLflow
    run, and return its ``jobs.results.RunResult``: run id, config, trajectory arrays (one row
    per iteration), gradient check and summary numbers.

    ``overrides``: a list of Hydra overrides, e.g. ``["init=steady", "iterations=200"]``.
    ``output_dir``: the run's local folder (default ``outputs/api/<date>/<time>``).
    Raises ``config.ConfigError`` for a bad value (no run is created), TypeError for a
    string instead of a list, ``jobs.results.GradientCheckFailed`` (the run ends FAILED),
    KeyboardInterrupt on Ctrl-C (the run ends KILLED)."""
    if isinstance(overrides, str | bytes):
        raise TypeError(f"overrides must be a list of strings, e.g. [{overrides!r}]")
    with guest():
        from rnnlab.config import with_search_path
        from rnnlab.errors import StoreFailed
        from rnnlab.jobs import recorder as recording
        from rnnlab.jobs import results, runner

        cfg, config = _composed(list(overrides))
        out = (
            Path(output_dir)
            if output_dir
            else (Path("outputs") / "api" / datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f"))
        )
        parent = _caller_run(config["tracking"]["uri"])
        chooses = any(o.lstrip("+").startswith("tracking.experiment=") for o in overrides)
        job = runner.job_of(
            cfg,
            config,
            with_search_path(list(overrides), cfg),
            out,
            parent_run_id=parent[0] if parent and not chooses else None,
            experiment_id=parent[1] if parent and not chooses else None,
        )
        recorder = recording.LocalRecorder(quiet=True)
        try:
            result = runner.run_job(job, recorder)
        except StoreFailed as exc:
            recorder.close()
            from rnnlab.errors import StoreError

            raise StoreError(f"the MLflow store stopped working: {exc}") from exc.error
        run_id, experiment_id, uri = recorder.ended[job.key]
        return results.RunResult(
            run_id=run_id,
            experiment_id=experiment_id,
            tracking_uri=uri,
            config=result.config,
            trajectory=result.trajectory,
            gradcheck=result.gradcheck,
            summary=result.summary,
        )


def _composed(overrides: list[str]) -> tuple[Any, dict[str, Any]]:
    """The config of ``overrides``, validated, and as plain containers; ConfigError (one
    line) for what the command refuses in one line: an override Hydra cannot read or
    apply, an option that does not exist, a value of the wrong type, an interpolation
    that does not resolve."""
    from rnnlab.cli.errors import override_errors
    from rnnlab.config import compose, to_container, validate
    from rnnlab.errors import ConfigError, user_error

    problem = override_errors(overrides)
    if problem is None:
        try:
            cfg = compose(overrides)
            validate(cfg)
            return cfg, to_container(cfg)
        except Exception as exc:
            problem = user_error(exc)
            if problem is None or isinstance(exc, ConfigError):
                raise
    raise ConfigError("overrides", overrides, "", message=problem) from None


def _caller_run(tracking_uri: str) -> tuple[str, str] | None:
    """(run id, experiment id) of the caller's active MLflow run, if it is in the store at
    ``tracking_uri`` (the caller's tracking URI names the same store)."""
    import mlflow

    from rnnlab.store import uris

    active = mlflow.active_run()
    if active is None:
        return None
    if uris.resolve_uri(mlflow.get_tracking_uri()) != uris.resolve_uri(tracking_uri):
        return None
    return active.info.run_id, active.info.experiment_id


def _client(tracking_uri: str | None):
    from rnnlab.store import client as client_mod
    from rnnlab.store import uris

    if tracking_uri is not None and not isinstance(tracking_uri, str | os.PathLike):
        raise TypeError(f"tracking_uri must be a string, not {type(tracking_uri).__name__}")
    uri = uris.resolve_uri(str(tracking_uri) if tracking_uri else uris.default_uri())
    return client_mod.client_for(uri, create=False), uri  # reading never creates a store


def _check_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not run_id.strip():
        raise TypeError(f"run_id must be an MLflow run id (a string), not {run_id!r}")
    return run_id


def load(run_id: str, tracking_uri: str | None = None):
    """A logged run read back from the store (no retraining), as a ``jobs.results.RunResult``.

    Raises ``store.records.RecordError`` (a LookupError) for an unknown run or one without its
    artifacts, ``store.uris.StoreError`` for a store that cannot be read (none is
    created), TypeError for a run id that is not a string."""
    _check_id(run_id)
    with guest():
        from rnnlab.jobs import results
        from rnnlab.store.records import load_record

        client, uri = _client(tracking_uri)
        record = load_record(client, run_id)
        summary = {
            k: float(v)
            for k, v in record.summary.items()
            if k in results.SUMMARY_KEYS and v is not None
        }
        return results.RunResult(
            run_id=run_id,
            experiment_id=record.experiment_id,
            tracking_uri=uri,
            config=record.config,
            trajectory=record.trajectory,
            gradcheck=record.gradcheck,
            summary=summary,
        )


def compare(runs: str | Sequence[str], tracking_uri: str | None = None):
    """A pandas DataFrame, one row per run (index ``run_id``): its params (dotted config
    keys), summary metrics and tags. ``runs`` is a list of run ids, or one sweep
    parent's id (its children). Raises ValueError for an empty list, LookupError for an
    unknown run, ``store.uris.StoreError`` for a store that cannot be read."""
    if not isinstance(runs, str):
        runs = list(runs)
        if not runs:
            raise ValueError("compare needs at least one run id (or a sweep parent's id)")
        for r in runs:
            _check_id(r)
    with guest():
        import pandas as pd

        from rnnlab.store import query

        client, _ = _client(tracking_uri)
        if isinstance(runs, str):
            parent = query.get_run(client, _check_id(runs))
            found = query.child_runs(client, parent.info.experiment_id, runs)
            if not found:
                found = [parent]
        else:
            found = [query.get_run(client, rid) for rid in runs]
        rows = []
        for r in found:
            row = {"run_id": r.info.run_id, "run_name": r.info.run_name, "status": r.info.status}
            row.update({k: _number(v) for k, v in r.data.params.items()})
            row.update(r.data.metrics)
            row.update(
                {f"tag.{k}": v for k, v in r.data.tags.items() if not k.startswith("mlflow.")}
            )
            rows.append(row)
        return pd.DataFrame(rows).set_index("run_id")


def _number(value: str):
    try:
        return float(value) if any(c in value for c in ".eE") else int(value)
    except ValueError:
        return value
