"""The private names of Hydra and MLflow that rnnlab cannot avoid, all here, each with a
test that fails when the framework changes it (tests/test_frameworks.py):

- ``basic_sweeper()`` (``hydra._internal``): rnnlab's sweeper is Hydra's basic sweeper
  with another check of a batch, and a sweep's plan is its expansion (``split_arguments``).
  Looked up when asked for: Hydra's plugin scan executes its core plugins' modules again,
  and a class bound before that is no longer the one their code names.
- ``hydra_arguments(args)``: Hydra's own command-line parser (``get_args_parser``, from
  ``hydra._internal.utils``), to say in one line what Hydra would refuse with a traceback.
- Hydra's process-wide state (``Singleton._instances``: GlobalHydra and the version base),
  which ``initialize``/``compose`` change and only partly put back (``hydra_restored``).
- MLflow's map of installed packages to their modules (``requirements_utils``), which a
  process's first ``save_model`` builds: built ahead while the recorder waits for its
  worker (``build_requirements_map``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def basic_sweeper() -> Any:
    """Hydra's ``BasicSweeper`` class, as Hydra's modules hold it now."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return BasicSweeper


def hydra_arguments(args: list[str]) -> Any:
    """``args`` as Hydra's command line reads them (an argparse Namespace: ``run``,
    ``multirun``, ``cfg``, ``info``, ``shell_completion``, ``overrides``, ...); None where
    Hydra's parser refuses them (then Hydra says why, as argparse does)."""
    import io

    from hydra._internal.utils import get_args_parser

    with contextlib.redirect_stderr(io.StringIO()):
        try:
            return get_args_parser().parse_args(args)
        except SystemExit:
            return None


@contextlib.contextmanager
def hydra_restored() -> Iterator[None]:
    """GlobalHydra as it was before the block (initialized with the caller's search path,
    or not at all) and Hydra's version base, which ``initialize`` sets for the whole
    process and does not put back (it decides whether a caller's app that names no
    ``version_base`` changes its working directory)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.singleton import Singleton
    from hydra.initialize import get_gh_backup
    from hydra.version import VersionBase

    backup = get_gh_backup()
    version: Any = Singleton._instances.get(VersionBase)
    base = version.version_base if version is not None else None
    try:
        yield
    finally:
        if backup is None:
            Singleton._instances.pop(GlobalHydra, None)
        else:
            Singleton._instances[GlobalHydra] = backup
        if version is None:
            Singleton._instances.pop(VersionBase, None)
        else:
            version.version_base = base  # setbase() refuses "unspecified"
            Singleton._instances[VersionBase] = version


def build_requirements_map() -> None:
    """Build MLflow's map of installed packages to their modules now (its
    ``_init_packages_to_modules_map``: 0.1-0.3 s of reading every installed distribution's
    metadata), which the first model saved in a process would otherwise build."""
    from mlflow.utils import requirements_utils

    build = getattr(requirements_utils, "_init_packages_to_modules_map", None)
    if build is not None:  # (gone in an MLflow to come: its first save builds it, as before)
        build()
