"""What a job created on disk: ``note`` looks at a run folder before Hydra makes it;
``remove`` takes away only the job's own new entries (``.hydra``, ``artifacts``, logs, a
sweep's job folders of nothing else) and the folders it made, never a file of the user's."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Created:
    """A run folder as it was before the job: which folders on its path did not exist
    (the run folder first, then its new parents) and, if it existed, what it held."""

    folder: Path
    new_folders: tuple[Path, ...]  # deepest first; empty when the folder existed
    existing: frozenset[str]  # names in the folder before the job (empty for a new one)


# Hydra's record of a job (and of a sweep); rnnlab's files for the job
JOB_ENTRIES = (".hydra", "artifacts", "multirun.yaml")


def _job_entry(entry: Path) -> bool:
    """One of a job's own entries, or a sweep's job folder holding only such entries."""
    if entry.name in JOB_ENTRIES or entry.suffix == ".log":
        return True
    try:
        return entry.is_dir() and not entry.is_symlink() and all(map(_job_entry, entry.iterdir()))
    except OSError:
        return False


_noted: dict[Path, Created] = {}  # by absolute folder: noted in this process


def note(folder: str | os.PathLike) -> Created:
    """Look at ``folder`` before anything is created in it, and remember what was there."""
    path = Path(os.path.abspath(folder))
    new: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        new.append(probe)
        probe = probe.parent
    try:
        existing = frozenset(p.name for p in path.iterdir()) if path.is_dir() else frozenset()
    except OSError:
        existing = frozenset()
    created = Created(path, tuple(new), existing)
    _noted[path] = created
    return created


def names_run_folder(exc: OSError) -> bool:
    """Whether ``exc`` failed on a noted run folder (or on the way to it): Hydra could
    not make the folder the user asked for."""
    if not exc.filename:
        return False
    failed = Path(os.path.abspath(exc.filename))
    return any(failed == f or failed in f.parents for f in _noted)


def noted(folder: str | os.PathLike) -> Created | None:
    """What ``note`` saw of ``folder`` in this process (None if it was not noted)."""
    return _noted.get(Path(os.path.abspath(folder)))


def remove(created: Created | None) -> list[Path]:
    """Remove what the job added under ``created.folder`` (its own kinds of entry,
    ``JOB_ENTRIES`` or a ``.log`` file, that were not there before), then each folder
    the job made, deepest first, while it is empty. Returns what was removed. ``None``
    (a folder never noted) removes nothing."""
    if created is None:
        return []
    removed: list[Path] = []
    folder = created.folder
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name in created.existing or not _job_entry(entry):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    for made in created.new_folders:
        try:
            made.rmdir()  # only if empty: something else may have been put there since
        except OSError:
            break
        removed.append(made)
    _noted.pop(folder, None)
    return removed
