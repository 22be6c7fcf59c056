"""Composing a config the way the ``rnnlab`` command does (conf/ and the user's
config folders on Hydra's search path), leaving Hydra's global state as it was, and
turning a composed config into plain containers and overrides.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rnnlab.config.schema import CONF_DIR, CUSTOM_START, named_start, register_configs
from rnnlab.frameworks import hydra_restored


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The config ``rnnlab`` would compose for these overrides (Hydra's compose API;
    ``hydra.searchpath=[...]`` among them adds the user's config folders). Works inside
    a caller's own Hydra context (a notebook's ``initialize``/``compose`` block, a
    ``@hydra.main`` app): GlobalHydra is put back as it was. Hydra's node is kept
    (``hydra.runtime.config_sources`` says which folders were used)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    with hydra_restored():  # the caller's Hydra, if any, is put back
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(
                config_name="config", overrides=list(overrides), return_hydra_config=True
            )


@contextlib.contextmanager
def job_environment(config: DictConfig) -> Iterator[None]:
    """The block with ``hydra.job.env_set`` in the environment, as Hydra sets it for each
    job: what a sweep resolves before its jobs (its parent's store) sees what they see."""
    env_set = {
        str(k): str(v) for k, v in (OmegaConf.select(config, "hydra.job.env_set") or {}).items()
    }
    saved = {k: os.environ.get(k) for k in env_set}
    os.environ.update(env_set)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def plain(node: Any, resolve: bool = True) -> Any:
    """An OmegaConf node as plain dicts and lists (interpolations resolved)."""
    return OmegaConf.to_container(node, resolve=resolve)


def config_overrides(node: Any) -> list[str]:
    """Hydra's record of the command line's overrides (``hydra.overrides.task``) as the
    strings typed: not resolved (``init.name=${oc.env:X}`` stays that text)."""
    return [str(o) for o in plain(node, resolve=False)] if node else []


# ``${name:...}``: a resolver's call (``oc.env``, ``now``, ...), in any spelling Hydra reads
# (``$\{oc.env:X\}`` is Hydra's own escaping of it in a sweep's job overrides)
_RESOLVER_CALL = re.compile(r"\$\\?\{\s*[A-Za-z_][\w.\-]*\s*:")


def resolver_call(override: str) -> str | None:
    """One line for an override that calls a resolver (``iterations=${oc.env:N}``), None
    for any other, an interpolation of config keys (``init.wx=${init.wrec}``) included.
    A run's config is its overrides: a value from outside them (the environment, the
    clock) would not be there when the run is rerun, and a logged override that called
    one would read whatever the rerun's environment holds."""
    if not _RESOLVER_CALL.search(override):
        return None
    return (
        f"{override!r} calls a resolver: an override may refer to config keys "
        "(init.wx=${init.wrec}) but not take a value from outside the config "
        "(${oc.env:...}, ${now:...}), which a rerun would not reproduce; give the value itself"
    )


SEARCHPATH_KEY = "hydra.searchpath"
# the config sources a user adds: --config-dir, and hydra.searchpath on the command line
USER_SOURCES = ("command-line", "hydra.searchpath in command-line")


def user_config_dirs(config_sources: Any) -> list[str]:
    """The config folders the user added to the search path (``--config-dir``,
    ``hydra.searchpath``), as absolute ``file://`` (or ``pkg://``) entries, in order."""
    found = []
    for source in config_sources or []:
        if source.get("provider") not in USER_SOURCES:
            continue
        path = str(source.get("path"))
        entry = (
            f"file://{os.path.abspath(path)}"
            if source.get("schema") == "file"
            else (f"{source.get('schema')}://{path}")
        )
        if entry not in found:
            found.append(entry)
    return found


def missing_config_dirs(dirs: list[str]) -> str | None:
    """One line naming the first user config folder that is not there (Hydra skips a
    ``hydra.searchpath`` folder it cannot find), None if all are."""
    for entry in dirs:
        if entry.startswith("file://") and not Path(entry[len("file://") :]).is_dir():
            return f"hydra.searchpath: the config folder {entry[len('file://') :]} is not there"
    return None


def searchpath_override(dirs: list[str]) -> list[str]:
    """``dirs`` as one override in Hydra's grammar (none for no folders): what a run logs
    so that a rerun composes with the same folders."""
    if not dirs:
        return []
    quoted = ", ".join("'" + d.replace("\\", "\\\\").replace("'", "\\'") + "'" for d in dirs)
    return [f"{SEARCHPATH_KEY}=[{quoted}]"]


def with_search_path(overrides: list[str], cfg: DictConfig) -> list[str]:
    """The overrides a run logs: the task's, and the user's config folders of ``cfg``
    (its Hydra node) as one absolute ``hydra.searchpath`` override."""
    rest = [o for o in overrides if not o.startswith(SEARCHPATH_KEY + "=")]
    sources = OmegaConf.select(cfg, "hydra.runtime.config_sources", default=None)
    return rest + searchpath_override(user_config_dirs(sources))


def searchpath_of(overrides: list[str]) -> list[str]:
    """The folders of a logged ``hydra.searchpath`` override (empty without one)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for o in overrides:
        if o.startswith(SEARCHPATH_KEY + "="):
            value = OverridesParser.create().parse_override(o).value()
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return []


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain dicts and lists (Hydra's own node left out). A start
    whose weights were overridden away from its named option's is named ``custom``."""
    container = {
        str(key): plain(cfg[key]) if OmegaConf.is_config(cfg[key]) else cfg[key]
        for key in cfg
        if key != "hydra"
    }
    init = container.get("init")
    if isinstance(init, dict) and init.get("name") != CUSTOM_START:
        named = named_start(str(init.get("name")))
        if named is not None and named != (init.get("wx"), init.get("wrec")):
            init["name"] = CUSTOM_START
    return container
