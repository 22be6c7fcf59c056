"""Step rules: RProp as lab 8 writes it, and plain gradient descent.

Each rule works elementwise on arrays of any shape, so the same function steps one
start (w of shape (2,)) or many starts at once (shape (M, 2)). A rule is a frozen
dataclass of hyperparameters with ``init(w) -> state`` and
``step(w, grad, state) -> (w_new, state_new, step_size)``; the state is a tuple of arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RProp:
    """Resilient propagation, exactly as the lab does it.

    Each weight has its own step Delta. When the gradient's sign equals the previous
    sign (the lab starts the previous sign at 0), Delta *= eta_plus, otherwise
    Delta *= eta_minus; then w -= sign(grad) * Delta. Optional bounds clip Delta.
    """

    initial_step: float = 0.001
    eta_plus: float = 1.2
    eta_minus: float = 0.5
    step_min: float | None = None
    step_max: float | None = None

    name = "rprop"

    def init(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(previous gradient sign, Delta)."""
        return np.zeros_like(w, dtype=float), np.full_like(w, self.initial_step, dtype=float)

    def step(
        self, w: np.ndarray, grad: np.ndarray, state: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
        prev_sign, delta = state
        sign = np.sign(grad)
        delta = np.where(sign == prev_sign, delta * self.eta_plus, delta * self.eta_minus)
        if self.step_min is not None or self.step_max is not None:
            delta = np.clip(delta, self.step_min, self.step_max)
        return w - sign * delta, (sign, delta), delta


@dataclass(frozen=True)
class GradientDescent:
    """Plain gradient descent: w -= learning_rate * grad. Its step size is |lr * grad|."""

    learning_rate: float = 1e-3

    name = "gd"

    def init(self, w: np.ndarray) -> tuple[()]:
        return ()

    def step(
        self, w: np.ndarray, grad: np.ndarray, state: tuple[()]
    ) -> tuple[np.ndarray, tuple[()], np.ndarray]:
        update = self.learning_rate * grad
        return w - update, state, np.abs(update)


Optimizer = RProp | GradientDescent
