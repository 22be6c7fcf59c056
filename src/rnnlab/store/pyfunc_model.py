"""The trained network as an MLflow pyfunc model, logged "from code" (no pickle).

MLflow copies this file into each logged model; the weights travel as the model's
artifact ``weights`` (a JSON file {"wx": ..., "wrec": ...}). Sequences in (rows of
numbers), the network's outputs (its estimates of their sums) out, computed with the
forward pass of lab 8. Needs only numpy and mlflow, so the model loads and serves
without rnnlab.
"""

import json

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class LinearRNNSum(PythonModel):
    def load_context(self, context) -> None:
        with open(context.artifacts["weights"]) as f:
            weights = json.load(f)
        self.wx = float(weights["wx"])
        self.wrec = float(weights["wrec"])

    # np.ndarray: a type hint MLflow accepts without inferring a schema from it (the
    # model's tensor signature checks the input).
    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        X = np.atleast_2d(np.asarray(model_input, dtype=float))
        s = np.zeros(X.shape[0])
        for k in range(X.shape[1]):
            s = X[:, k] * self.wx + s * self.wrec  # s_k = x_k wx + s_{k-1} wrec
        return s


mlflow.models.set_model(LinearRNNSum())
