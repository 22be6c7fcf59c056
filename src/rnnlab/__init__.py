"""rnnlab: config-driven experiments on the linear RNN of lab 8.

import rnnlab
result = rnnlab.run(["optimizer=gd", "init=steady"])   # train and log one run
again = rnnlab.load(result.run_id)                      # read it back, no retraining
table = rnnlab.compare([result.run_id, again.run_id])   # a pandas DataFrame
"""

from __future__ import annotations

from typing import Any

__all__ = ["compare", "load", "run"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `import rnnlab` stays cheap (no mlflow or Hydra until needed).
    if name in __all__:
        from rnnlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")
