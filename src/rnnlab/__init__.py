"""rnnlab: config-driven experiments on the linear RNN of lab 8.

import rnnlab
result = rnnlab.run(["optimizer=gd", "init=steady"])   # train and log one run
again = rnnlab.load(result.run_id)                      # read it back, no retraining
table = rnnlab.compare([result.run_id, again.run_id])   # a pandas DataFrame
"""

from __future__ import annotations

import os
import sys
from typing import Any

# Machines here set PYTHONDONTWRITEBYTECODE: Python would then compile MLflow, Hydra and
# the rest anew at every start (a run ~3x slower). rnnlab caches their bytecode in the
# virtualenv's __pycache__ folders on first use instead (RNNLAB_WRITE_BYTECODE=0: not).
# uv's compile-bytecode setting did it at install, but re-checks all of site-packages at
# every `uv run` (1-2 s and a line of output each time).
if os.environ.get("RNNLAB_WRITE_BYTECODE", "1") != "0":
    sys.dont_write_bytecode = False

__all__ = ["compare", "load", "run"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `import rnnlab` stays cheap (no mlflow or Hydra until needed).
    if name in __all__:
        from rnnlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")
