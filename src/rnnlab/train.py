"""The optimisation loop: BPTT gradients fed to a step rule, recorded as a Trajectory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlab import rnn
from rnnlab.optim import Optimizer

COMPLETED, CONVERGED, DIVERGED = "completed", "converged", "diverged"


@dataclass(frozen=True)
class Trajectory:
    """Row k is iteration k: the weights w[k] where the gradient was taken, the loss and
    gradient there, and the step sizes of the update that followed. ``final_w`` is where
    the run ended and ``final_loss`` the loss there (None only if even the start was not
    finite). Every recorded number is finite.

    status: ``completed`` (all iterations ran), ``converged`` (loss fell below the
    tolerance), or ``diverged`` (a loss, gradient or update overflowed or went non-finite
    at iteration ``len(loss)``; the rows before it are kept).
    """

    w: np.ndarray  # (n, 2) wx, wrec
    loss: np.ndarray  # (n,)
    grad: np.ndarray  # (n, 2)
    step: np.ndarray  # (n, 2)
    final_w: np.ndarray  # (2,)
    final_loss: float | None
    status: str

    @property
    def iterations(self) -> int:
        return len(self.loss)

    @property
    def diverged(self) -> bool:
        return self.status == DIVERGED

    def columns(self) -> dict[str, np.ndarray]:
        """The per-iteration series under their metric names."""
        return {
            "loss": self.loss,
            "wx": self.w[:, 0],
            "wrec": self.w[:, 1],
            "grad_wx": self.grad[:, 0],
            "grad_wrec": self.grad[:, 1],
            "step_wx": self.step[:, 0],
            "step_wrec": self.step[:, 1],
        }


def _finite(*values: object) -> bool:
    return all(np.all(np.isfinite(v)) for v in values)


def optimise(
    X: np.ndarray,
    t: np.ndarray,
    start: tuple[float, float],
    optimizer: Optimizer,
    iterations: int,
    tolerance: float | None = None,
) -> Trajectory:
    """Run ``iterations`` updates of ``optimizer`` from ``start`` on (X, t)."""
    w = np.array(start, dtype=float)
    state = optimizer.init(w)
    ws, losses, grads, steps = [], [], [], []
    status, final_w, final_loss = COMPLETED, w, None
    for k in range(iterations + 1):
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                value, grad = rnn.loss_and_grad(X, t, w)
                if not _finite(value, grad):
                    raise FloatingPointError
                if k == iterations or (tolerance is not None and value < tolerance):
                    final_w, final_loss = w, value
                    if k < iterations:
                        status = CONVERGED
                    break
                w_new, state, step = optimizer.step(w, grad, state)
                if not _finite(w_new, step):
                    raise FloatingPointError
        except FloatingPointError:
            status = DIVERGED
            if losses:
                final_w, final_loss = ws[-1], losses[-1]
            break
        ws.append(w)
        losses.append(value)
        grads.append(grad)
        steps.append(step)
        w = w_new
    return Trajectory(
        w=np.array(ws).reshape(-1, 2),
        loss=np.array(losses, dtype=float),
        grad=np.array(grads).reshape(-1, 2),
        step=np.array(steps).reshape(-1, 2),
        final_w=np.asarray(final_w, dtype=float),
        final_loss=final_loss,
        status=status,
    )


def predict(sequences: np.ndarray, wx: float, wrec: float) -> np.ndarray:
    """The network's outputs (its estimate of each sequence's sum), one per row."""
    sequences = np.atleast_2d(np.asarray(sequences, dtype=float))
    return rnn.forward_states(sequences, wx, wrec)[:, -1]
