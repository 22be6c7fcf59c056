"""Hydra's launchers as rnnlab runs them: joblib's settings checked, a local Ray instance
on loopback (or a cluster joined), the tags a worker's run gets, Hydra's files scrubbed.
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.types import RunMode
from omegaconf import DictConfig

from rnnlab import console
from rnnlab.config import plain
from rnnlab.errors import SweepRefused

RAY_NODE_TAG = "ray_node_id"  # on a child a Ray worker ran: the node it ran on
RNNLAB_LAUNCHER = "hydra_plugins.rnnlab_launcher.RnnlabLauncher"


# --- joblib's workers ---------------------------------------------------------------

JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def check_launcher(config: DictConfig) -> None:
    """The launcher's settings that would fail the sweep after its parent opened."""
    launcher = config.hydra.launcher
    if launcher.get("_target_") == JOBLIB_LAUNCHER:
        n = launcher.get("n_jobs")
        if not isinstance(n, int) or isinstance(n, bool) or n == 0:
            raise SweepRefused(
                f"hydra.launcher.n_jobs={n} is not allowed: a number of worker processes "
                "(>= 1), or -1 for one per core (-2: all but one, ...)"
            )


def worker_tags() -> dict[str, str]:
    """Where a job ran, for a job that a Ray worker runs: its node (tag ``ray_node_id``,
    so a run on a cluster says which machine computed it)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return {}
    try:
        return {RAY_NODE_TAG: ray.get_runtime_context().get_node_id()}
    except Exception:  # a Ray without a runtime context here: nothing to say
        return {}


# --- a local Ray instance --------------------------------------------------------------

RAY_LAUNCHER = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"


def start_ray(config: DictConfig) -> None:
    """With ``hydra/launcher=ray``: join the cluster at ``hydra.launcher.ray.init.address``
    (or ``$RAY_ADDRESS``), or else start a local Ray instance here, quiet, with its
    session files in a temporary folder that goes with it when this process ends (the
    launcher then uses it). Jobs run in this environment: no runtime
    environment is built (app.cli sets RAY_ENABLE_UV_RUN_RUNTIME_ENV=0, or Ray would
    build a virtualenv of the whole uv project per session: minutes, a GB left behind)."""
    launcher = config.hydra.launcher
    if launcher.get("_target_") != RAY_LAUNCHER:
        return
    init: dict[str, Any] = plain(launcher.ray.init) or {}
    import logging
    import shutil

    import ray

    if ray.is_initialized():
        return
    address = init.get("address") or os.environ.get("RAY_ADDRESS")
    if address:
        # a cluster: join it here, quiet. (The launcher would pass its default
        # object_store_memory, which Ray refuses when joining a cluster.)
        init.pop("object_store_memory", None)
        if str(address).split("://")[-1].startswith(("127.", "localhost")):
            # a cluster on loopback: this node is 127.0.0.1 too (Ray would otherwise
            # look for a route outside first, and warn where there is none)
            init.setdefault("_node_ip_address", "127.0.0.1")
        ray.init(**{"logging_level": logging.ERROR, **init, "address": address})
        atexit.register(ray.shutdown)
        return
    folder = tempfile.mkdtemp(prefix="rnnlab-ray-")  # short: Ray's socket paths must be
    init = {
        "object_store_memory": 78643200,  # as the launcher sets it: 75 MB is plenty here
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        **init,
        "_temp_dir": folder,
    }
    ray.init(**{k: v for k, v in init.items() if k != "address"})

    def stop() -> None:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)


def scrub_hydra_files(config: DictConfig) -> None:
    """Hydra's own record of a job (``.hydra/*.yaml``) and of a sweep (``multirun.yaml``)
    keep the command line as typed: hide passwords in URIs there too (written just now,
    before the job starts)."""
    folders = [Path(config.hydra.runtime.output_dir) / (config.hydra.output_subdir or "")]
    files = [p for f in folders if config.hydra.output_subdir for p in f.glob("*.yaml")]
    if config.hydra.mode == RunMode.MULTIRUN:
        files.append(Path(config.hydra.sweep.dir) / "multirun.yaml")
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            hidden = console.redact(text)
            if hidden != text:
                path.write_text(hidden, encoding="utf-8")
        except OSError:
            continue  # not there (or not ours to change): nothing to hide
