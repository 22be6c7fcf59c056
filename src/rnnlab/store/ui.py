"""What rnnlab hands to the MLflow UI: links that open on the training view (MLflow 3.17's
UI takes the view from the URL's ``workflowType``; its own links drop it), the experiment's
saved view "rnnlab: results" (an experiment tag: columns, every run drawn), sweep names."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Sequence

from rnnlab.config.params import (
    CHOICE_PREFIX,
    LOG10_PREFIX,
    NAMED_KEYS,
    SWEPT_PREFIX,
    on_log_scale,
)
from rnnlab.store import experiments as experiments_mod
from rnnlab.store import log, query, uris

TRAINING_VIEW = "workflowType=machine_learning"  # the UI's "Model training" view
DEFAULT_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a database store
VIEW_ID = "rnnlab-results"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_ID}"  # the UI's saved-view tag prefix + id
VIEW_NAME = "rnnlab: results"
VIEW_MAX_CHARS = 5000  # MLflow's limit on an experiment tag's value (SQL stores)
RUN_NAME_COLUMN = "attributes.`Run Name`"  # the runs table's column id
RUN_NAME_WIDTH = 300  # pixels (MLflow's default cuts names near 16 characters)
MAX_COMPARE_LINK = 100  # children in a printed compare link (a URL of run ids)
# the columns of the results view: what tells runs apart, then their results
PARAMS = ("init.name", "optimizer.name")
METRICS = ("final_loss", "iterations", "diverged")
SWEEP_METRICS = ("best_final_loss", "jobs_diverged")
SWEEP_TAG = "sweep"  # "true" on a sweep's parent run
IN_SWEEP_TAG = "in_sweep"  # on a sweep's child: its parent's run name (a view column)
# The chart view: the loss on a log axis (the lab's losses span 1e12 to 0.1) and, once the
# experiment holds sweeps, its newest sweep's keys in parallel coordinates against the
# final loss's log10 (runs without one, the diverged, are left off: MLflow draws a run
# only where it has every axis). The UI adds a chart of its own for every other metric
# (its `updateChartAndSectionConfigs`), into the last two sections, which it takes for
# "Model metrics" and "System metrics".
_MODEL_SECTION = "rnnlab-model-metrics"
RESULT_METRIC = "log10_final_loss"  # the result on a linear axis (bar charts, parallel)
_SECTIONS = [
    {
        "uuid": uuid,
        "name": name,
        "display": True,
        "isReordered": False,
        "deleted": False,
        "isGenerated": True,
    }
    for uuid, name in (
        (_MODEL_SECTION, "Model metrics"),
        ("rnnlab-system-metrics", "System metrics"),
    )
]
_LOSS_CHART = {
    "uuid": "rnnlab-loss-log",
    "type": "LINE",
    "metricSectionId": _MODEL_SECTION,
    "deleted": False,
    "isGenerated": False,
    "displayName": "loss (log scale)",
    "metricKey": "loss",
    "selectedMetricKeys": ["loss"],
    "lineSmoothness": 0,
    "xAxisScaleType": "linear",
    "scaleType": "log",
    "xAxisKey": "step",
    "selectedXAxisMetricKey": "",
    "yAxisKey": "metric",
    "yAxisExpressions": [],
    "ignoreOutliers": False,
    "useGlobalXaxisKey": True,
    "useGlobalLineSmoothing": True,
}


def charts(swept: Sequence[str]) -> dict:
    """The view's chart state: the loss chart, and parallel coordinates over the params
    ``swept`` (``choice.<key>``) coloured by ``log10_final_loss`` when there are any."""
    parallel = {
        "uuid": "rnnlab-sweep-parallel",
        "type": "PARALLEL",
        "metricSectionId": _MODEL_SECTION,
        "deleted": False,
        "isGenerated": False,
        "displayName": "newest sweep: its keys and log10 of the final loss",
        "selectedParams": list(swept),
        "selectedMetrics": [RESULT_METRIC],
        "showAllRuns": True,
    }
    return {
        "compareRunSections": _SECTIONS,
        "compareRunCharts": [_LOSS_CHART, *([parallel] if swept else [])],
        "isAccordionReordered": False,
    }


NAME_TAG = "sweep_name"  # on a sweep's parent: its name before the number


def base_url(tracking_uri: str, ui_url: str | None = None) -> str:
    """The UI's address: ``ui_url`` if given, else the tracking server itself (its UI is
    at the same address), else ``http://127.0.0.1:5000`` (``mlflow ui``'s default, for a
    database store)."""
    if ui_url:
        return ui_url.rstrip("/")
    if uris.is_server(tracking_uri):
        parts = urllib.parse.urlsplit(tracking_uri)
        host = parts.netloc.rsplit("@", 1)[-1]  # never a password in a printed link
        return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
    return DEFAULT_UI


def run_route(experiment_id: str, run_id: str) -> str:
    """A run's page, relative to the UI's address (a link inside a description)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}"


def run_link(base: str, experiment_id: str, run_id: str) -> str:
    """A run's page, in the training view."""
    return f"{base}/{run_route(experiment_id, run_id)}?{TRAINING_VIEW}"


def view_link(base: str, experiment_id: str) -> str:
    """The experiment's runs table in rnnlab's saved view (columns, every run drawn)."""
    return f"{base}/#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_ID}&{TRAINING_VIEW}"


def compare_link(base: str, experiment_id: str, run_ids: Sequence[str]) -> str | None:
    """MLflow's compare page for these runs (None past ``MAX_COMPARE_LINK`` runs: the
    link would be a page of ids; tick them in the table instead)."""
    if not run_ids or len(run_ids) > MAX_COMPARE_LINK:
        return None
    runs = urllib.parse.quote(json.dumps(list(run_ids), separators=(",", ":")))
    experiments = urllib.parse.quote(json.dumps([experiment_id]))
    return f"{base}/#/compare-runs?runs={runs}&experiments={experiments}&{TRAINING_VIEW}"


def _column(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"  # the UI's canonical column key


def save_results_view(client, experiment_id: str) -> None:
    """Keep the experiment's saved view "rnnlab: results": the runs table with rnnlab's
    columns (what a run started from, its results) and, once the experiment holds
    sweeps, their swept keys (``choice.<key>``, oldest sweep first) and their metrics;
    every run drawn in the charts (not MLflow's first 10), empty charts hidden. The
    columns come from the store (the sweep parents' ``sweep.<key>`` params), so that
    sweeps started at once, each saving the view, agree on it
    (``store.experiments.update_experiment_tag``); columns a view had before are kept. Written
    only when that changes the view. Raises what the store raises."""
    experiments_mod.update_experiment_tag(
        client,
        experiment_id,
        VIEW_TAG,
        lambda old: _view_with(old, *_view_parts(client, experiment_id)),
    )


def _view_parts(client, experiment_id: str) -> tuple[list[str], dict]:
    """The results view's columns for the runs the experiment holds now, and its charts."""
    parents = query.search(client, [experiment_id], f"tags.`{SWEEP_TAG}` = 'true'")
    keys = [
        [k[len(SWEPT_PREFIX) :] for k in r.data.params if k.startswith(SWEPT_PREFIX)]
        for r in parents
    ]
    swept = [k for run_keys in keys for k in run_keys if k not in NAMED_KEYS]
    params = [*PARAMS, *(f"{CHOICE_PREFIX}{k}" for k in swept)]
    metrics = [*METRICS, *(SWEEP_METRICS if parents else ())]
    columns = [
        *(_column("params", k) for k in params),
        *(_column("metrics", k) for k in metrics),
        *([_column("tags", IN_SWEEP_TAG)] if parents else []),
    ]
    last = parents[-1].data.params if parents else {}
    newest = [  # a key searched on a log scale by its log10 (the chart has no log axis)
        (LOG10_PREFIX if on_log_scale(last[SWEPT_PREFIX + k]) else CHOICE_PREFIX) + k
        for k in (keys[-1] if keys else [])
    ]
    return list(dict.fromkeys(columns)), charts(newest)


def _view_with(old: str | None, columns: list[str], chart_state: dict) -> str | None:
    """The view's tag value with ``columns`` added to those of ``old`` (its value now);
    None when ``old`` has them all already (once per new column, not once per run)."""
    created, old_state, columns = int(time.time() * 1000), None, list(columns)
    if old is not None:
        try:
            envelope = json.loads(old)
            created, old_state = int(envelope["createdAt"]), envelope["state"]
            before = json.loads(old_state)["selectedColumns"]
            columns = list(dict.fromkeys([*before, *columns]))
        except (ValueError, KeyError, TypeError):
            pass  # a view edited by hand: rnnlab's replaces it
    while True:
        state = {
            "selectedColumns": columns,
            # wide enough for a sweep's name with its number, expanded and indented (the
            # UI applies a width only to a column named in columnOrder; the columns it
            # does not name keep their order after it)
            "columnOrder": [RUN_NAME_COLUMN],
            "columnWidths": {RUN_NAME_COLUMN: RUN_NAME_WIDTH},
            "runsHiddenMode": "SHOW_ALL",
            "hideEmptyCharts": True,
            **chart_state,
        }
        envelope = {
            "name": VIEW_NAME,
            "createdAt": created,
            "updatedAt": int(time.time() * 1000),
            "state": json.dumps(state, separators=(",", ":")),
        }
        value = json.dumps(envelope, separators=(",", ":"))
        if len(value) <= VIEW_MAX_CHARS or len(columns) <= len(PARAMS) + len(METRICS):
            break
        columns.pop()  # past the tag's limit: the newest columns go
    return None if envelope["state"] == old_state else value


def number_name(client, experiment_id: str, run_id: str, base: str, extra: str = "") -> str:
    """Name the run ``<base> #k[ extra]``, k its place (by start time) among the runs of
    the experiment whose tag ``sweep_name`` is ``base`` (deleted ones too), so that two
    sweeps of one experiment never share a name, even when started at once. The run
    must carry that tag already; returns the name set."""
    quoted = base.replace("\\", "\\\\").replace("'", "\\'")
    runs = query.search(
        client, [experiment_id], f"tags.`{NAME_TAG}` = '{quoted}'", every_lifecycle=True
    )
    order = sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))
    k = 1 + next((i for i, r in enumerate(order) if r.info.run_id == run_id), len(order))
    name = " ".join(filter(None, (f"{base} #{k}", extra)))
    client.set_tag(run_id, log.RUN_NAME_TAG, name)
    return name


def run_lines(base: str, experiment_id: str, run_id: str) -> list[str]:
    """The console's links after a single run."""
    return [
        f"In the MLflow UI: {run_link(base, experiment_id, run_id)}",
        f"  every run of the experiment, results as columns: {view_link(base, experiment_id)}",
    ]


def sweep_lines(base: str, experiment_id: str, parent_id: str, child_ids: Sequence[str]) -> list:
    """The console's links after a sweep: its parent, its children compared, and the
    experiment's runs table in the results view."""
    lines = [f"In the MLflow UI: the sweep {run_link(base, experiment_id, parent_id)}"]
    compare = compare_link(base, experiment_id, child_ids)
    runs = "its run" if len(child_ids) == 1 else f"its {len(child_ids)} runs"
    if compare:
        lines.append(f"  {runs} compared: {compare}")
    elif child_ids:
        lines.append(
            f"  {runs}: no compare link past {MAX_COMPARE_LINK} (a URL of ids); in the view"
            " below, filter `tags.in_sweep`, tick them and press Compare"
        )
    lines.append(
        f"  every run of the experiment, results as columns: {view_link(base, experiment_id)}"
    )
    return lines
