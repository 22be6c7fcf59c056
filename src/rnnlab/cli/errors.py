"""One line for each kind of mistake a user can make (a value, an override, a config
folder, a run folder, a store): ``user_error``. Every entry point and the sweep's
callback turn an exception into the line they print with it; anything it does not
know is a bug, which keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from rnnlab.config import CONF_DIR, ConfigError, conf_options
from rnnlab.proc import created
from rnnlab.store.uris import StoreError


def first_line(text: str) -> str:
    """The first line of ``text`` that holds anything ("" if none)."""
    return text.strip().splitlines()[0] if text.strip() else ""


def user_error(exc: BaseException) -> str | None:
    """One line for a mistake in the user's config or overrides (or a store that cannot
    be used); None for anything else."""
    from hydra.errors import OverrideParseException, SearchPathException

    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, SearchPathException):  # --config-dir DIR that is not there
        return (
            str(exc).strip().splitlines()[0].replace("Additional config directory", "--config-dir")
        )
    if isinstance(exc, OSError) and created.names_run_folder(exc):
        where = exc.filename
        return (
            f"cannot make the run folder {where} (hydra.run.dir / hydra.sweep.dir): {exc.strerror}"
        )
    if isinstance(exc, StoreError):
        return str(exc)
    if isinstance(exc, OverrideParseException):
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        return f"cannot read an override: {lines[0] if lines else exc}"
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and exc.options:
        group, _, option = exc.missing_cfg_file.rpartition("/")
        return (
            f"{group}={option} is not an option of group '{group}': "
            f"choose one of {', '.join(exc.options)}"
        )
    if isinstance(exc, ConfigCompositionException | OmegaConfBaseException):
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        key = getattr(exc, "full_key", None)
        if key and lines and not lines[0].startswith(str(key)):
            lines[0] = f"{key}: {lines[0]}"  # which key, first
        cause = exc.__cause__
        if isinstance(cause, OmegaConfBaseException):
            lines.append(first_line(str(cause)))
        keep = []
        for ln in lines:
            if ln.startswith(("Config search path", "full_key", "object_type", "reference_type")):
                break
            if ln not in keep:
                keep.append(ln)
        text = "; ".join(keep) or type(exc).__name__
        if "not in 'RnnlabSweeperConf'" in text:  # another sweeper's settings
            text += (
                " (rnnlab's grid sweeper has no such setting: name the sweeper these settings"
                " are for on the command line, e.g. hydra/sweeper=optuna; an experiment file"
                " cannot switch it)"
            )
        return text
    return None


USAGE_ERROR = 2


# Hydra's command-line flags that take a value (the value is not an override)
_FLAGS_WITH_VALUE = {
    "--cfg", "-c", "--package", "-p", "--info", "-i", "--config-path", "-cp",
    "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun",
    "--shell-completion",
}  # fmt: skip


def override_errors(args: list[str]) -> str | None:
    """The first override on the command line that Hydra's grammar cannot read, as one
    line (Hydra would stop with a traceback, or mistake ``=5`` for a group)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.startswith("-") and arg:
            skip = arg in _FLAGS_WITH_VALUE
            continue
        if not arg.strip():
            return "an empty argument is not an override: write key=value (e.g. iterations=200)"
        try:
            override = parser.parse_overrides([arg])[0]
        except OverrideParseException as exc:
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            why = next(
                (ln for ln in lines if not ln.startswith(("Error parsing", "See ", "^"))),
                "not Hydra's override grammar",
            )
            return (
                f"cannot read the override {arg!r}: {why} (write key=value, e.g. "
                "iterations=200; quote values with spaces or accents: key='a b')"
            )
        if not override.key_or_group:
            return f"the override {arg!r} has no key: write key=value (e.g. iterations=200)"
        group = override.key_or_group
        if (CONF_DIR / group).is_dir() and not override.is_delete() and override.value() is None:
            options = conf_options(group)
            return f"{group}=null is not allowed: choose one of {', '.join(options)}"
    return None


def remove_run_folder(output_dir: Path) -> None:
    """Take away what a run refused before it was recorded created in its folder
    (Hydra's ``.hydra/`` and log, its ``artifacts/``), and the folders it made, as
    ``proc.created.note`` saw them before Hydra made anything: never a folder or file that
    was there before, never a folder that was not noted."""
    created.remove(created.noted(output_dir))
