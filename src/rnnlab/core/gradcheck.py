"""Numerical gradient check: BPTT against central differences, as lab 8 does it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlab.core import rnn

PARAMS = ("wx", "wrec")


@dataclass(frozen=True)
class GradCheck:
    """Per parameter: the backprop gradient, the numerical one and their relative error."""

    at: tuple[float, float]
    eps: float
    backprop: dict[str, float]
    numerical: dict[str, float]
    rel_error: dict[str, float]
    rtol: float

    @property
    def passed(self) -> bool:
        return all(self.rel_error[p] <= self.rtol for p in PARAMS)

    def summary(self) -> str:
        if self.passed:
            return "No gradient errors found"
        bad = [p for p in PARAMS if self.rel_error[p] > self.rtol]
        return "; ".join(
            f"numerical gradient of {p} = {self.numerical[p]:.6f} is not close to the "
            f"backpropagation gradient {self.backprop[p]:.6f} "
            f"(relative error {self.rel_error[p]:.2e} > {self.rtol:.0e})"
            for p in bad
        )


def relative_error(a: float, b: float) -> float:
    """|a - b| / max(|a|, |b|), and 0 when both are 0."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0.0 else abs(a - b) / scale


def gradient_check(
    X: np.ndarray, t: np.ndarray, wx: float, wrec: float, eps: float, rtol: float
) -> GradCheck:
    """Compare BPTT's gradients at (wx, wrec) with central differences of step eps."""
    w = np.array([wx, wrec], dtype=float)
    _, grads = rnn.loss_and_grad(X, t, w)
    numerical = {}
    for i, p in enumerate(PARAMS):
        plus, minus = w.copy(), w.copy()
        plus[i] += eps
        minus[i] -= eps
        loss_plus = rnn.loss(rnn.forward_states(X, *plus)[:, -1], t)
        loss_minus = rnn.loss(rnn.forward_states(X, *minus)[:, -1], t)
        numerical[p] = (loss_plus - loss_minus) / (2 * eps)
    backprop = {p: float(grads[i]) for i, p in enumerate(PARAMS)}
    return GradCheck(
        at=(float(wx), float(wrec)),
        eps=eps,
        backprop=backprop,
        numerical=numerical,
        rel_error={p: relative_error(backprop[p], numerical[p]) for p in PARAMS},
        rtol=rtol,
    )
