"""Every kind of mistake a user can make, as one line (``user_error``), and the errors
rnnlab raises for them. Anything ``user_error`` does not know is a bug and keeps its
traceback. Hydra's and OmegaConf's exception types are imported where they are read.
"""

from __future__ import annotations

from typing import Any

USAGE_ERROR = 2  # the exit status of a user's mistake (no run is created)
INTERRUPTED = 130  # ... of a command ended by a signal


class ConfigError(ValueError):
    """A config value outside what is allowed, or an override that cannot be applied
    (``message``: Hydra's or OmegaConf's reason, in one line). ``str()`` is the one-line
    message."""

    def __init__(self, key: str, value: Any, allowed: str, message: str | None = None) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        shown = repr(value)
        shown = f"{shown[:57]}... ({len(shown):,} characters)" if len(shown) > 60 else shown
        super().__init__(message or f"{key}={shown} is not allowed: {allowed}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigError, (self.key, self.value, self.allowed, str(self)))


class StoreError(RuntimeError):
    """The store cannot be used (a server that does not answer, an unreadable file)."""


class SweepRefused(BaseException):
    """The sweep cannot start. A BaseException: Hydra turns an Exception raised in a
    callback into a warning and goes on."""


class StoreFailed(BaseException):
    """The store stopped taking writes while runs were open (a full disk, a server gone).
    A BaseException, so that no job's handling takes it for the job's own failure."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def first_line(text: str) -> str:
    """The first line of ``text`` that holds anything ("" if none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def user_error(exc: BaseException) -> str | None:
    """One line for a mistake in the user's config, overrides or store; None for a bug."""
    import yaml
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
        SearchPathException,
    )
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, ConfigError | StoreError | SweepRefused):
        return str(exc)
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark  # a config file of the user's that is not YAML
        return f"{mark.name}, line {mark.line + 1}: not valid YAML: {exc.problem}"
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"a config file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
            f"position {exc.start}): save it as UTF-8"
        )
    if isinstance(exc, SearchPathException):  # --config-dir DIR that is not there
        return first_line(str(exc)).replace("Additional config directory", "--config-dir")
    if isinstance(exc, OverrideParseException):
        return f"cannot read an override: {first_line(str(exc)) or exc}"
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
        if isinstance(exc.__cause__, OmegaConfBaseException):
            lines.append(first_line(str(exc.__cause__)))
        keep: list[str] = []
        for ln in lines:
            if ln.startswith(("Config search path", "full_key", "object_type", "reference_type")):
                break
            if ln not in keep:
                keep.append(ln)
        return "; ".join(keep) or type(exc).__name__
    return None


def job_error(exc: BaseException) -> str:
    """A job's failure in one line (its run's error, a sweep's line for the job)."""
    return user_error(exc) or f"{type(exc).__name__}: {first_line(str(exc))}"
