"""What a job hands its recorder (``jobs.recorder``): where a run is, the sweep it belongs
to, what it is opened with and what it made; picklable, no MLflow, so that the calls can
be forwarded to another process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from rnnlab.proc.created import Created

MetricPoint = tuple[str, float, int]  # (key, value, step), as store.log takes them


class RunRef(NamedTuple):
    """Where a run is recorded."""

    run_id: str
    experiment_id: str
    tracking_uri: str


@dataclass(frozen=True)
class SweepRef:
    """The sweep a job belongs to: its key in the recorder that opened it, and its ids for
    a job recorded in another process (a joblib or Ray worker)."""

    key: str
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    name: str | None = None  # the parent's run name (its children's ``in_sweep`` tag)


@dataclass
class RunSpec:
    """What a run is opened with (made by the job, picklable, no MLflow)."""

    tracking: dict[str, Any]  # the config's tracking node (uri, experiment, artifacts)
    source: str  # the command that made it (MLflow's Source)
    name: str
    tags: dict[str, str]
    params: dict[str, str]
    config_folder: Path  # config/: the resolved config and the overrides, logged first
    sweep: SweepRef | None = None
    experiment_id: str | None = None  # an experiment of its own (a rerun: the original's)
    parent_run_id: str | None = None  # a caller's own MLflow run (the Python API)
    label: str = ""  # a sweep job's console label: "[job 3] init=steady optimizer=gd"
    created: Created | None = None  # the run folder as it was: what a refused run removes


@dataclass
class RunRecord:
    """What a job made, for its run (picklable, no MLflow)."""

    metrics: list[MetricPoint] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    dataset: Any = None  # core.data.Dataset, logged as the run's input
    folders: dict[str, Path] = field(default_factory=dict)  # artifact path -> local folder
    model: tuple[float, float, list[float]] | None = None  # wx, wrec, an input example
    lines: list[str] = field(default_factory=list)  # a run's report ("{run_id}": its id)
    outcome: str = ""  # a sweep job's result in a few words
