"""The trained network as an MLflow pyfunc model "from code" (copied into each model, no
pickle; the weights its artifact ``weights``): sequences in, their estimated sums out."""

import json

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class LinearRNNSum(PythonModel):
    def load_context(self, context) -> None:
        with open(context.artifacts["weights"], encoding="utf-8") as f:
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
