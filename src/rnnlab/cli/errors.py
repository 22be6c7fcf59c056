"""The command line's own mistakes: an override Hydra's grammar cannot read
(``override_errors``), a run folder that cannot be made (``run_folder_error``), and what a
refused run leaves behind (``remove_run_folder``).
"""

from __future__ import annotations

from pathlib import Path

from rnnlab.config import CONF_DIR, conf_options
from rnnlab.proc import created


def run_folder_error(exc: BaseException) -> str | None:
    """One line for a run (or sweep) folder Hydra could not make; None for anything else."""
    if isinstance(exc, OSError) and created.names_run_folder(exc):
        return (
            f"cannot make the run folder {exc.filename} (hydra.run.dir / hydra.sweep.dir): "
            f"{exc.strerror}"
        )
    return None


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
