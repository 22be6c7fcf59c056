"""The command line's own mistakes: an override Hydra's grammar cannot read
(``override_errors``), a run folder that cannot be made (``run_folder_error``), and what a
refused run leaves behind (``remove_run_folder``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from rnnlab.config import CONF_DIR, Config, conf_options, resolver_call
from rnnlab.errors import USAGE_ERROR
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


SCHEMA_KEYS = {f.name for f in fields(Config)}  # what no ``~key`` override can delete


def flag_errors(args: list[str]) -> str | None:
    """Hydra's modes given together (``-m --cfg job``: Hydra runs one at a time and says
    so with a traceback), as one line; None if the flags go together."""
    from rnnlab.frameworks import hydra_arguments

    parsed = hydra_arguments(args)
    if parsed is None:
        return None
    modes = [
        flag
        for flag, given in (
            ("--run", parsed.run),
            ("-m/--multirun", parsed.multirun),
            (f"--cfg {parsed.cfg}", parsed.cfg is not None),
            ("--info", parsed.info is not None),
            ("--shell-completion", parsed.shell_completion),
        )
        if given
    ]
    if len(modes) < 2:
        return None
    return (
        f"{' and '.join(modes)} cannot be given together: Hydra does one of --run, "
        "-m/--multirun, --cfg, --info and --shell-completion at a time"
    )


TOO_BIG = "rnnlab's numbers are floats, at most 1.8e308 (write a large one as 1e300)"


def _huge(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` (an override's: a number, a list, a sweep) holds an integer no
    float can hold."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value.bit_length() > 1023
    if isinstance(value, dict):
        value = list(value.values())
    elif hasattr(value, "__dict__") and depth < 3:  # Hydra's sweeps: choice, range, ...
        value = list(vars(value).values())
    return isinstance(value, list | tuple) and any(_huge(v, depth + 1) for v in value)


def _shown(arg: str) -> str:
    """An argument as a line quotes it: a long one shortened, with its length."""
    return repr(arg) if len(arg) <= 80 else f"{arg[:60]!r}... ({len(arg):,} characters)"


def override_errors(args: list[str]) -> str | None:
    """The first override on the command line that Hydra's grammar cannot read, as one
    line (Hydra would stop with a traceback, or mistake ``=5`` for a group); Hydra's
    modes given together (``flag_errors``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    problem = flag_errors(args)
    if problem is not None:
        return problem

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
        if resolver_call(arg):
            return resolver_call(arg)
        try:
            override = parser.parse_overrides([arg])[0]
        except ValueError:  # Python reads integers of at most 4,300 digits
            return f"cannot read the override {_shown(arg)}: {TOO_BIG}"
        except OverrideParseException as exc:
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            why = next(
                (ln for ln in lines if not ln.startswith(("Error parsing", "See ", "^"))),
                "not Hydra's override grammar",
            )
            return (
                f"cannot read the override {_shown(arg)}: {why} (write key=value, e.g. "
                "iterations=200; quote values with spaces or accents: key='a b')"
            )
        if not override.key_or_group:
            return f"the override {arg!r} has no key: write key=value (e.g. iterations=200)"
        key = override.key_or_group
        if _huge(override.value()):
            return f"{key}: the override {_shown(arg)} holds a number too large: {TOO_BIG}"
        if override.is_delete() and key.split(".")[0] in SCHEMA_KEYS:
            return (
                f"{arg} cannot be applied: {key} is a key of rnnlab's config schema, which "
                f"keeps every key it has; set a value instead (e.g. {key}=VALUE)"
            )
        group = override.key_or_group
        if (CONF_DIR / group).is_dir() and not override.is_delete() and override.value() is None:
            options = conf_options(group)
            return f"{group}=null is not allowed: choose one of {', '.join(options)}"
    return None


def undecodable_config(exc: BaseException, args: list[str]) -> str | None:
    """For a config file that is not UTF-8 (``exc``), one line naming it: the first such
    ``*.yaml`` in the command line's config folders (``--config-dir``, ``hydra.searchpath``)."""
    from rnnlab.config import searchpath_of
    from rnnlab.frameworks import hydra_arguments

    if not isinstance(exc, UnicodeDecodeError):
        return None
    parsed = hydra_arguments(args)
    if parsed is None:
        return None
    folders = [parsed.config_dir] if parsed.config_dir else []
    folders += [e.removeprefix("file://") for e in searchpath_of(parsed.overrides)]
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.yaml")):
            try:
                path.read_text(encoding="utf-8")
            except UnicodeDecodeError as bad:
                return (
                    f"{path} is not UTF-8 text (byte 0x{bad.object[bad.start]:02x} at "
                    f"position {bad.start}): save it as UTF-8"
                )
            except OSError:
                continue
    return None


class Arguments(argparse.ArgumentParser):
    """A command's argument parser whose mistakes are one line (argparse also prints its
    usage): ``prog: error: why (see prog --help)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        from rnnlab import console

        console.error(self.prog, f"{message} (see {self.prog} --help)")
        sys.exit(USAGE_ERROR)


def remove_run_folder(output_dir: Path) -> None:
    """Take away what a run refused before it was recorded created in its folder
    (Hydra's ``.hydra/`` and log, its ``artifacts/``), and the folders it made, as
    ``proc.created.note`` saw them before Hydra made anything: never a folder or file that
    was there before, never a folder that was not noted."""
    created.remove(created.noted(output_dir))
