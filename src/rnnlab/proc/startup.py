"""A command's process: garbage collection off while it imports (its collections cost ~18%
of start-up), back on, start-up's objects frozen, once start-up is over (``settle_gc``);
its end without a teardown of every object (``exit``)."""

from __future__ import annotations

import atexit
import gc
from typing import NoReturn


def quiet_gc() -> None:
    """Start-up begins: no garbage collection while its imports run."""
    gc.disable()


def settle_gc() -> None:
    """Start-up is over: keep the objects its imports made (MLflow's ~1M; a full
    collection walking them cost ~0.15 s in one of every two runs' metric logging) out of
    every later collection, and collect again. Does nothing where collection is on (not
    a start-up of rnnlab's own, e.g. the Python API's caller's process). Without it a
    sweep's worker grew by ~1.8 MB a job (the OmegaConf cycles of every composed config)."""
    if gc.isenabled():
        return
    gc.freeze()
    gc.enable()


_exit_code: list[int] = []  # set by ``exit``: this process's status, once it is decided


def quick_exit_after_hooks() -> None:
    """A command's first step: once its status is set (``exit``) and every exit hook
    registered after this one has run (joblib's, Ray's, MLflow's; they run last-in first-
    out), logging is shut down, the streams flushed and the process ends without tearing
    its ~1M objects down one by one (0.1-0.2 s a process: both of a two-process command's
    are on the path to its prompt). An exit without a status set tears down as usual."""

    def end() -> None:
        if _exit_code:
            import logging
            import os
            import sys

            logging.shutdown()
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(_exit_code[0])

    atexit.register(end)


def exit(code: int) -> NoReturn:
    """End this process with ``code`` through Python's own exit (SystemExit passes up
    through every frame, the exit hooks run), then quickly (``quick_exit_after_hooks``)."""
    _exit_code[:] = [code]
    raise SystemExit(code)
