"""Garbage collection around a process's start-up: off while it imports, back on after.

``cli.app.cli`` turns collection off while the ``rnnlab`` command imports (the imports'
own collections cost ~18% of their time); ``settle_gc`` ends that once start-up is over,
in whichever process gets there: the recorder when it opens the store, the worker at
its first job, a joblib worker after its warm-up, the sweeper's composer when forked.
"""

from __future__ import annotations

import gc


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
