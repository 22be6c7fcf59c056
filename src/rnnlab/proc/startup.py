"""Garbage collection off while a command imports (its collections cost ~18% of start-up),
back on, start-up's objects frozen, once start-up is over (``settle_gc``)."""

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
