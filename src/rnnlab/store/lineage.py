"""What identifies the code that made a run: rnnlab's version, its own checkout's commit
when it runs from one (an editable install holding this package; never the user's
repository), the lock file of the environment's uv project, the libraries' versions."""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path
from urllib.parse import unquote, urlparse

PACKAGE = Path(__file__).resolve().parents[1]  # the rnnlab package that is running
VERSION_TAG = "version.rnnlab"
LIBRARIES = ("numpy", "hydra-core", "omegaconf", "mlflow", "matplotlib")


def rnnlab_version() -> str:
    """The installed rnnlab's version ("unknown" where it is not installed)."""
    try:
        return version("rnnlab")
    except PackageNotFoundError:
        return "unknown"


def version_text() -> str:
    """What ``--version`` prints: rnnlab's version, then the frameworks' and Python's."""
    frameworks = f"Hydra {version('hydra-core')}, MLflow {version('mlflow')}"
    return f"rnnlab {rnnlab_version()} ({frameworks}, Python {platform.python_version()})"


def version_note(run_id: str, tags: dict[str, str]) -> str | None:
    """One line when the run was recorded by another rnnlab version than this one (None
    when it is the same)."""
    recorded, now = tags.get(VERSION_TAG), rnnlab_version()
    if recorded == now:
        return None
    was = f"rnnlab {recorded}" if recorded else "an rnnlab that did not record its version"
    return (
        f"run {run_id} was recorded by {was}; this is rnnlab {now} (its config is checked "
        "against the logged one)"
    )


@functools.cache
def checkout() -> Path | None:
    """rnnlab's own checkout when it runs from one (an editable install of it, holding this
    package); None when rnnlab was installed from a wheel."""
    try:
        raw = distribution("rnnlab").read_text("direct_url.json")
    except PackageNotFoundError:
        return None
    try:
        info = json.loads(raw or "{}")
    except ValueError:
        return None
    url = info.get("url", "")
    if not info.get("dir_info", {}).get("editable") or not url.startswith("file:"):
        return None
    root = Path(unquote(urlparse(url).path)).resolve()
    return root if PACKAGE.is_relative_to(root) else None


@functools.cache
def git_state() -> dict[str, str]:
    """``git_commit``, ``git_dirty`` (and MLflow's ``mlflow.source.git.commit``) of rnnlab's
    checkout; empty when rnnlab is not running from one (or it is not a git repository)."""
    root = checkout()
    if root is None:
        return {}

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root:
            return {}  # a copy of the checkout inside someone else's repository
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {
        "git_commit": commit,
        "git_dirty": str(dirty).lower(),
        "mlflow.source.git.commit": commit,
    }


def environment_lock() -> Path | None:
    """The lock file of the environment that runs: ``uv.lock`` of the uv project whose
    ``.venv`` this is (rnnlab's checkout, or the user's project); None for any other
    environment (a plain virtualenv, a system Python)."""
    prefix = Path(sys.prefix)
    lock = prefix.parent / "uv.lock"
    try:
        made_by_uv = "uv =" in (prefix / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return None
    return lock if prefix.name == ".venv" and made_by_uv and lock.is_file() else None


@functools.cache
def lineage() -> dict[str, str]:
    """rnnlab's version, the libraries' versions, Python's, and the lock file's hash."""
    tags = {VERSION_TAG: rnnlab_version(), "version.python": platform.python_version()}
    tags |= {f"version.{pkg}": version(pkg) for pkg in LIBRARIES}
    lock = environment_lock()
    if lock is not None:
        tags["uv_lock_sha256"] = hashlib.sha256(lock.read_bytes()).hexdigest()
    return tags


def source_tags(source: str) -> dict[str, str]:
    """MLflow's standard columns: Source (the command that made the run), its type, and
    Created by; plus what identifies the code (``lineage``, ``git_state``)."""
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
