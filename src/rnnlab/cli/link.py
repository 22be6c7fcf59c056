"""The worker's end of the two-process link (``cli.recorder``): what it sends the
recorder (a job to open, its result, a sweep's start and end) and the failures of its
jobs.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

LINK: Any = None  # in the worker: its end of the pipe (multiprocessing.connection)
_job_failures: set[int] = set()  # in the worker: the errors its sweep's jobs raised


def connect(conn) -> None:
    """In the worker, just forked: ``conn`` is its end of the pipe to the recorder."""
    global LINK
    LINK = conn


def note_job_failure(exc: BaseException) -> None:
    """``exc`` is a sweep job's own failure (recorded on its run)."""
    _job_failures.add(id(exc))


def job_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a sweep job's own failure (recorded on its run), not Hydra's."""
    return id(exc) in _job_failures


def request(message: tuple) -> tuple:
    """In the worker: send ``message`` and wait for the recorder's answer."""
    LINK.send(message)
    return LINK.recv()


# --- the worker ---------------------------------------------------------------------------


def hand_over(cfg, output_dir: Path, overrides: list[str]) -> float | dict:
    """In the worker: check the config (a bad value raises: no run), let the recorder
    open the run, compute and write the job (training or a basin map), hand it over.
    Returns the job's objective (``JobResult.objective``; a basin map: its metrics,
    without the run's id)."""
    from rnnlab.config import to_container, validate
    from rnnlab.jobs import basin_map, training
    from rnnlab.proc import created, startup

    startup.settle_gc()
    validate(cfg)
    config = to_container(cfg)
    folder = Path(output_dir) / "artifacts"
    # with what Hydra found in the run's folder: the recorder removes only what was made
    LINK.send(("start", config["task"], config, overrides, folder, created.noted(output_dir)))
    if config["task"] == "basin_map":
        prepared = basin_map.prepare_basin(config, folder)
        _send_result(("result",), prepared)
        return dict(prepared.job.summary) if prepared.job else {}
    prepared = training.prepare(cfg, output_dir, overrides, in_sweep=True, config=config)
    _send_result(("result",), prepared)
    return prepared.result.objective if prepared.result else float("inf")


def hand_over_job(cfg, output_dir: Path, overrides: list[str], num: int, label: str) -> float:
    """In the worker, one job of a sweep: the recorder opens its run (a child of the
    parent), the worker computes and writes it, the recorder records it. A job's own
    failure is raised here too, after the recorder has it (Hydra marks the job failed)."""
    from rnnlab.config import to_container
    from rnnlab.jobs import training
    from rnnlab.proc import startup

    startup.settle_gc()
    config = to_container(cfg)
    LINK.send(("job-start", num, config, overrides, Path(output_dir) / "artifacts"))
    prepared = training.prepare(cfg, output_dir, overrides, in_sweep=True, config=config)
    _send_result(("job-result", num, label), prepared)
    if prepared.problem is not None:
        note_job_failure(prepared.problem)
        raise prepared.problem
    return prepared.result.objective


def _send_result(head: tuple, prepared) -> None:
    if prepared.files is not None:  # drawn inline here: the worker is the second core
        try:
            prepared.files.wait()
        except Exception as exc:
            prepared.problem = exc
        prepared.files = None
    try:
        message = pickle.dumps((*head, prepared))
    except Exception:  # an error that does not pickle: its text crosses instead
        prepared.problem = RuntimeError(f"{type(prepared.problem).__name__}: {prepared.problem}")
        message = pickle.dumps((*head, prepared))
    LINK.send_bytes(message)
