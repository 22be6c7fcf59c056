"""Dataset recipes: sequences of numbers whose target is their sum.

Pure numpy. Each recipe draws from a generator made here from the seed;
nothing touches numpy's global random state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

RECIPES = ("lab8", "binary")

# The lab's test sequence (lab 8, cell 11; also golden/lab8.json "test.input"): a run of
# five values, four times.
LAB_TEST_SEQUENCE = (0.66, 0.33, 0.33, 0.66, 1.0) * 4


@dataclass(frozen=True)
class Dataset:
    """Inputs X (n_samples, seq_len), targets t = row sums, and a content digest."""

    X: np.ndarray
    t: np.ndarray
    recipe: str
    seed: int

    @property
    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the recipe, shape and the bytes of X and t."""
        h = hashlib.sha256()
        h.update(f"{self.recipe}:{self.X.shape}".encode())
        h.update(np.ascontiguousarray(self.X, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(self.t, dtype="<f8").tobytes())
        return h.hexdigest()[:16]


def make_dataset(recipe: str, n_samples: int, seq_len: int, seed: int) -> Dataset:
    """Build a dataset by a named recipe.

    lab8:   the lab's recipe. Legacy ``RandomState(seed)`` uniform draws, ``ceil(u*3)/3``
            rounded to 2 decimals with 0.67 replaced by 0.66, so values are 0.33, 0.66 or 1.
    binary: the original tutorial's recipe, ``round(uniform)``, so values are 0 or 1.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown data recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    # The lab seeds numpy's legacy stream; a RandomState object gives the same draws
    # without touching global state.
    rng = np.random.RandomState(seed)
    u = rng.uniform(size=(n_samples, seq_len))
    if recipe == "lab8":
        X = np.round(np.ceil(u * 3) / 3, 2)
        X[X == 0.67] = 0.66
    else:
        X = np.round(u)
    t = np.sum(X, axis=1)
    return Dataset(X=X, t=t, recipe=recipe, seed=seed)
