"""The optimisation loop: BPTT gradients fed to a step rule, recorded as a Trajectory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.core import rnn
from rnnlab.core.optim import Optimizer

COMPLETED, CONVERGED, DIVERGED = "completed", "converged", "diverged"


@dataclass(frozen=True)
class Trajectory:
    """The points an optimisation visited and the updates between them.

    Point k (k = 0..n) is the weights ``w[k]`` after k updates, with the loss and the
    gradient there; update k (k = 0..n-1) is the step size ``step[k]`` that took point
    k to point k + 1. Point 0 is the start and point n = ``iterations`` the end, so the
    loss history ends at ``final_loss``. Every recorded number is finite.

    status: ``completed`` (every iteration ran), ``converged`` (the loss fell below the
    tolerance at point n), or ``diverged``: at iteration ``diverged_at`` the loss left
    its bound (``loss_factor`` times the starting loss), or a loss, gradient or update
    overflowed or went non-finite. The points before it are kept and the last of them is
    the end; the update into the failed point is dropped.
    """

    start: np.ndarray  # (2,)
    w: np.ndarray  # (n + 1, 2) wx, wrec per point
    loss: np.ndarray  # (n + 1,)
    grad: np.ndarray  # (n + 1, 2)
    step: np.ndarray  # (n, 2)
    status: str
    diverged_at: int | None = None

    @property
    def iterations(self) -> int:
        """Updates applied: the end point's index."""
        return len(self.step)

    @property
    def diverged(self) -> bool:
        return self.status == DIVERGED

    @property
    def final_w(self) -> np.ndarray:
        """Where training ended (the start itself if not even it was finite)."""
        return self.w[-1] if len(self.w) else self.start

    @property
    def final_loss(self) -> float | None:
        return float(self.loss[-1]) if len(self.loss) else None

    def columns(self) -> dict[str, np.ndarray]:
        """The series under their metric names: per point (``loss``, ``wx``, ``wrec``,
        ``grad_*``: n + 1 values) and per update (``step_*``: n values)."""
        return {
            "loss": self.loss,
            "wx": self.w[:, 0],
            "wrec": self.w[:, 1],
            "grad_wx": self.grad[:, 0],
            "grad_wrec": self.grad[:, 1],
            "step_wx": self.step[:, 0],
            "step_wrec": self.step[:, 1],
        }


def _finite(*values: Any) -> bool:
    return all(np.all(np.isfinite(v)) for v in values)


def loss_bound(start_loss: float, loss_factor: float | None) -> float:
    """The loss above which a run counts as diverged: ``loss_factor`` times its starting
    loss (no bound when the factor is None or the start's loss is 0)."""
    if loss_factor is None or not start_loss > 0:
        return np.inf
    return loss_factor * start_loss


def optimise(
    X: np.ndarray,
    t: np.ndarray,
    start: tuple[float, float],
    optimizer: Optimizer,
    iterations: int,
    tolerance: float | None = None,
    loss_factor: float | None = None,
    safe_point: Callable[[], None] | None = None,
) -> Trajectory:
    """Run up to ``iterations`` updates of ``optimizer`` from ``start`` on (X, t);
    ``safe_point()`` before each (where the caller may stop it by raising)."""
    w = np.array(start, dtype=float)
    state = optimizer.init(w)
    ws, losses, grads, steps = [], [], [], []
    status, diverged_at, bound = COMPLETED, None, np.inf
    for k in range(iterations + 1):
        if safe_point is not None:
            safe_point()
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                value, grad = rnn.loss_and_grad(X, t, w)
                if not _finite(value, grad) or value > bound:
                    raise FloatingPointError
        except FloatingPointError:
            status, diverged_at = DIVERGED, k
            break
        if k == 0:
            bound = loss_bound(value, loss_factor)
        ws.append(w)
        losses.append(value)
        grads.append(grad)
        if tolerance is not None and value < tolerance:
            status = CONVERGED
            break
        if k == iterations:
            break
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                w_new, state, step = optimizer.step(w, grad, state, value)
                if not _finite(w_new, step):
                    raise FloatingPointError
        except FloatingPointError:
            status, diverged_at = DIVERGED, k
            break
        steps.append(step)
        w = w_new
    n_points = len(ws)
    return Trajectory(
        start=np.array(start, dtype=float),
        w=np.array(ws, dtype=float).reshape(-1, 2),
        loss=np.array(losses, dtype=float),
        grad=np.array(grads, dtype=float).reshape(-1, 2),
        step=np.array(steps[: max(n_points - 1, 0)], dtype=float).reshape(-1, 2),
        status=status,
        diverged_at=diverged_at,
    )


def predict(sequences: np.ndarray, wx: float, wrec: float) -> np.ndarray:
    """The network's outputs (its estimate of each sequence's sum), one per row."""
    sequences = np.atleast_2d(np.asarray(sequences, dtype=float))
    return rnn.forward_states(sequences, wx, wrec)[:, -1]
