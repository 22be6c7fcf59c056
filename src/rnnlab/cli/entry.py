"""The console scripts' entry points: signal handlers first, then the command.

Importing a command's modules (Hydra, MLflow, matplotlib) takes 0.3-2 s; a signal then
(Ctrl-C at once, a scheduler's SIGTERM) ended the command with the default action (exit
-15, -1) and no word. Installed here, before those imports, a signal there ends it
(once the imports are done) with the one line every interruption gets and exit status
130; so does a signal the command itself does not catch (its first steps, before its
own handling). Only the standard library, ``proc.signals`` and ``store.runs`` (no
MLflow at import) are imported before the handlers are in place.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module


def _start(prog: str, target: str) -> None:
    from rnnlab.proc import signals
    from rnnlab.store import runs

    signals.install_signal_handlers()
    module, _, name = target.partition(":")
    try:
        # a signal during the imports takes effect after them: cut in the middle, an
        # import (Hydra's, OmegaConf's) leaves broken state behind and a traceback
        with signals.shielded():
            command: Callable[[], None] = getattr(import_module(module), name)
        # the command handles a signal where it has runs to end; one that lands outside
        # (its first steps before its own handling, its last ones after) ends it here
        command()
    except KeyboardInterrupt as exc:
        why = exc.signal_name if isinstance(exc, signals.Interrupted) else "SIGINT"
        print(runs.interrupted_line(prog, why), file=sys.stderr, flush=True)
        sys.exit(130)


def rnnlab() -> None:
    """``rnnlab``: a run, a sweep (-m) or a basin map."""
    _start("rnnlab", "rnnlab.cli.app:cli")


def rnnlab_plot() -> None:
    """``rnnlab-plot RUN_ID``: redraw a logged run's figures."""
    _start("rnnlab-plot", "rnnlab.cli.replot:main")


def rnnlab_rerun() -> None:
    """``rnnlab-rerun RUN_ID``: rerun a logged run or sweep."""
    _start("rnnlab-rerun", "rnnlab.cli.rerun_main:main")


def rnnlab_doctor() -> None:
    """``rnnlab-doctor``: find (and end) runs left RUNNING."""
    _start("rnnlab-doctor", "rnnlab.cli.doctor:main")
