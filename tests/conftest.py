"""Shared fixtures: the golden figures, the lab's data, and composed configs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import settings

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
import mlflow
import pytest
from omegaconf import DictConfig

from rnnlab.config import compose
from rnnlab.core.data import make_dataset

# The suite is a gate: its property tests draw the same examples every run (seeded from
# each test), and write no example database. HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("gate", derandomize=True, database=None)
settings.register_profile("explore")  # Hypothesis's defaults: random examples
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))

GOLDEN_PATH = Path(__file__).parent / "golden" / "lab8.json"
# The per-iteration metrics and the named starting points the issues specify.
SERIES = ["loss", "wx", "wrec", "grad_wx", "grad_wrec", "step_wx", "step_wrec"]
INITS = [
    "lab_start",
    "steady",
    "explode",
    "explode_oscillate",
    "vanish_at_once",
    "vanish",
    "vanish_oscillate",
]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _no_store_in_the_checkout(tmp_path_factory):
    """A test that forgets to name its store must not write one into the source tree."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path_factory.mktemp('stray')}/mlflow.db")
    os.environ["RNNLAB_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="session")
def golden() -> dict:
    return json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def lab_data():
    return make_dataset("lab8", 30, 20, 61185)


@pytest.fixture(scope="session")
def store_template(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store, migrated once per session (~1.3 s a store)."""
    import sqlite3

    from rnnlab.store import client

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    client.client_for(f"sqlite:///{path}")
    client.forget(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:  # everything in the main file, ready to copy
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _TEMPLATE[:] = [path]
    return path


_TEMPLATE: list[Path] = []  # the session's template store (store_template sets it)


@pytest.fixture(autouse=True)
def _template_for_stores(store_template):
    """Every test can call new_store (module fixtures ask for store_template)."""


def new_store(path: Path) -> Path:
    """A migrated, empty store at ``path`` (a copy of the session's template)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        shutil.copyfile(_TEMPLATE[0], path)
    return path


def store_overrides(tmp_path: Path) -> list[str]:
    """Overrides that point tracking and outputs at tmp_path (a migrated store there)."""
    new_store(tmp_path / "mlflow.db")
    return [
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"tracking.artifact_root={tmp_path}/artifacts",
    ]


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """The config the CLI would compose for these overrides (real Hydra composition)."""
    return compose(overrides or [])


def cli_command(args: list[str], script: str = "rnnlab") -> list[str]:
    """The installed console script with its arguments."""
    return [str(Path(sys.executable).parent / script), *args]


def cli_environment() -> dict[str, str]:
    """This environment without MLflow or Hydra settings that would leak into the CLI."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}


def run_cli(
    args: list[str],
    cwd: Path,
    timeout: float = 300,
    script: str = "rnnlab",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run an installed console script in a subprocess (its output read as UTF-8)."""
    return subprocess.run(
        cli_command(args, script),
        cwd=cwd,
        capture_output=True,
        encoding="utf-8",
        errors="backslashreplace",
        timeout=timeout,
        env=cli_environment() if env is None else env,
    )


def assert_close(actual: float, expected: float, rel: float) -> None:
    assert np.isclose(actual, expected, rtol=rel, atol=0), (actual, expected)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 (its own process group), its SQLite store
    and artifacts under ``folder``; ``stop()`` ends it, ``start()`` again on the port."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder, self.port = folder, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        new_store(folder / "server.db")  # migrated already: the server starts sooner
        self.start()

    def start(self) -> None:
        import time
        import urllib.request

        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                f"sqlite:///{self.folder}/server.db",
                "--artifacts-destination",
                str(self.folder / "server-artifacts"),
                "--workers",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        pytest.fail("mlflow server did not start")

    def stop(self, sig: int = 15) -> None:
        import signal as signals

        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signals.SIGKILL)
            self.proc.wait(timeout=30)
