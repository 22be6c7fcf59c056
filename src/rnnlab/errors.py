"""One line for each kind of mistake a user can make (a value, an override, a config
folder, a run folder, a store): ``user_error``. Every entry point and the sweep's
callback turn an exception into the line they print with it; anything it does not
know is a bug, which keeps its traceback."""

from __future__ import annotations

from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from rnnlab import created
from rnnlab.config import ConfigError


def _first_line(text: str) -> str:
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
    if type(exc).__name__ == "StoreError":  # tracking.StoreError (not imported here: mlflow)
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
            lines.append(_first_line(str(cause)))
        keep = []
        for ln in lines:
            if ln.startswith(("Config search path", "full_key", "object_type", "reference_type")):
                break
            if ln not in keep:
                keep.append(ln)
        return "; ".join(keep) or type(exc).__name__
    return None
