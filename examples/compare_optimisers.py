"""Train from one start with both optimisers, read the runs back, and compare them.

    uv run python examples/compare_optimisers.py

Uses the default store (outputs/mlflow.db); open it with the MLflow UI afterwards.
"""

import mlflow
import numpy as np

import rnnlab

# Same overrides and grammar as the command line: `rnnlab init=steady optimizer=...`.
rprop = rnnlab.run(["init=steady", "plots=none"])
gd = rnnlab.run(["init=steady", "optimizer=gd", "plots=none"])
print(f"RProp final loss {rprop.final_loss:.4g}, gradient descent {gd.final_loss:.4g}")
print("RProp's loss at iterations 0, 50, 499:", rprop.trajectory.loss[[0, 50, 499]])

# Weeks later: read a run back from the store, without retraining.
again = rnnlab.load(rprop.run_id)
assert np.array_equal(again.trajectory.loss, rprop.trajectory.loss)

# One row per run: every config value (dotted keys), summary metric and tag.
table = rnnlab.compare([rprop.run_id, gd.run_id])
columns = ["optimizer.name", "final_loss", "final_wx", "final_wrec", "diverged"]
print(table[columns].to_string())  # every column, at any terminal width

# The trained network is an MLflow model: sequences in, sums out.
mlflow.set_tracking_uri(rprop.tracking_uri)
model = mlflow.pyfunc.load_model(f"runs:/{rprop.run_id}/model")
print("sum of [1, 1, 1] by the RProp network:", model.predict(np.array([[1.0, 1.0, 1.0]])))
