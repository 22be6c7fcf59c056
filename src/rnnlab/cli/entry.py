"""The console scripts' entry points: signals noted from the first moment (a Ctrl-C during
the commands' 0.3-2 s of imports is not lost), then the command. A signal that came and
that the command did not end on is the one line every interruption gets, exit 130.
"""

from __future__ import annotations

import sys
from importlib import import_module


def _start(prog: str, target: str) -> None:
    import os

    from rnnlab import console
    from rnnlab.errors import INTERRUPTED
    from rnnlab.proc import signals, startup

    startup.quick_exit_after_hooks()
    started = os.getpid()
    signals.install()
    console.open_streams()
    console.others_warn_only()
    console.quiet_logging_errors()
    module, _, name = target.partition(":")
    try:
        getattr(import_module(module), name)()
        code = 0
    except BrokenPipeError:  # what it printed had no reader left (``| head``): done
        console.reader_gone(sys.stdout)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = INTERRUPTED
    mine = os.getpid() == started  # (not the command's forked worker: its recorder speaks)
    if mine and signals.received() is not None and code != INTERRUPTED:
        console.say(f"{prog}: interrupted ({signals.received()})", err=True)
        code = INTERRUPTED
    if mine:
        signals.ignore()  # done and said: Python's exit must not be cut short by a signal
    startup.exit(code)


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
