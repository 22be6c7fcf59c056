"""The trained network as an MLflow pyfunc model, logged "from code" (no pickle).

MLflow copies this file into each run's model; the weights travel in the model's
``model_config`` ({"wx": ..., "wrec": ...}). Sequences in (rows of numbers), the
network's outputs (its estimates of their sums) out, computed with the forward pass
of lab 8. Needs only numpy and mlflow, so the model loads and serves without rnnlab.
"""

from __future__ import annotations

import warnings

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel

# The input is a plain float array, checked by the model's tensor signature instead.
# (MLflow still prints its nudge once per process when it logs or loads the model: it
# re-enables UserWarnings around that check. No type hint it accepts avoids it either.)
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")


class LinearRNNSum(PythonModel):
    def load_context(self, context) -> None:
        self.wx = float(context.model_config["wx"])
        self.wrec = float(context.model_config["wrec"])

    def predict(self, context, model_input, params=None) -> np.ndarray:
        X = np.atleast_2d(np.asarray(model_input, dtype=float))
        s = np.zeros(X.shape[0])
        for k in range(X.shape[1]):
            s = X[:, k] * self.wx + s * self.wrec  # s_k = x_k wx + s_{k-1} wrec
        return s


mlflow.models.set_model(LinearRNNSum())
