"""Basin maps: optimise a whole grid of starting points at once.

Pure numpy. For this model the loss is a quadratic in wx whose coefficients are
polynomials in wrec (``rnn`` module docstring):

    loss(wx, r) = wx^2 A(r) - 2 wx B(r) + C,   A(r) = sum_j a_j r^j,  B(r) = sum_j b_j r^j

with a = mean_i p_i * p_i (polynomial product), b = mean_i t_i p_i, where p_i holds the
coefficients of P_i(r) = sum_k x_ik r^(T-k). The coefficients are computed once; then
the loss and gradient of M starts cost one (T, M) table of powers r^0..r^(T-1), one
matrix product and a few elementwise operations per iteration (A, of degree 2T-2, is
split as A_lo + r^T A_hi so that the table stays T rows: it is the cost that counts).
The step rules are ``optim``'s, applied to all starts at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnlab.core.optim import Optimizer


@dataclass(frozen=True)
class Coefficients:
    """A(r), A'(r), B(r), B'(r) as polynomials, for evaluation from the powers r^0..r^(T-1)
    only: ``table`` columns are the low halves [A, A', B, B'] (coefficients of r^0..r^(T-1))
    and the high halves [A, A'] (of r^T..r^(2T-1)), so that A = A_lo + r^T A_hi."""

    table: np.ndarray  # (T, 6)
    C: float


def coefficients(X: np.ndarray, t: np.ndarray) -> Coefficients:
    T = X.shape[1]
    p = X[:, ::-1]  # p[i, j] = coefficient of r^j in P_i
    a = np.mean([np.convolve(row, row) for row in p], axis=0)  # r^0 .. r^(2T-2)
    b = np.mean(t[:, None] * p, axis=0)  # r^0 .. r^(T-1)
    da = a[1:] * np.arange(1, 2 * T - 1)  # r^0 .. r^(2T-3)
    db = b[1:] * np.arange(1, T)  # r^0 .. r^(T-2)
    table = np.zeros((T, 6))
    table[:, 0] = a[:T]
    table[: min(T, len(da)), 1] = da[:T]
    table[:, 2] = b
    table[: T - 1, 3] = db
    table[: T - 1, 4] = a[T:]
    table[: T - 2, 5] = da[T:]
    return Coefficients(table=table, C=float(np.mean(t * t)))


def loss_and_grad(coef: Coefficients, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loss (M,) and gradient (2, M) at the starts w (2, M): row 0 wx, row 1 wrec.
    Non-finite where it overflows."""
    wx, r = w[0], w[1]
    T = coef.table.shape[0]
    powers = np.empty((T, len(r)))
    powers[0] = 1.0
    for j in range(1, T):  # r^j by repeated multiplication, row by row (cache friendly)
        np.multiply(powers[j - 1], r, out=powers[j])
    A, dA, B, dB, A_hi, dA_hi = coef.table.T @ powers
    rT = powers[T - 1] * r
    A += rT * A_hi
    dA += rT * dA_hi
    wxA = wx * A
    loss = wx * (wxA - 2.0 * B) + coef.C
    grad = np.stack([2.0 * (wxA - B), wx * (wx * dA - 2.0 * dB)])
    return loss, grad


@dataclass
class BasinResult:
    """Per start: final loss (NaN where diverged), first iteration with loss < tolerance
    (-1 if never), iteration at which it diverged (-1 if never)."""

    final_loss: np.ndarray
    first_converged: np.ndarray
    diverged_at: np.ndarray

    @property
    def converged(self) -> np.ndarray:
        return self.first_converged >= 0

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_at >= 0


def optimise_many(
    X: np.ndarray,
    t: np.ndarray,
    starts: np.ndarray,
    optimizer: Optimizer,
    iterations: int,
    tolerance: float,
    chunk: int = 4096,
    progress: Callable[[int], None] | None = None,
    loss_factor: float | None = None,
) -> BasinResult:
    """Run ``iterations`` updates from every start (M, 2), ``chunk`` starts at a time
    (memory stays O(chunk T) whatever M is).

    A start diverges at the first iteration whose loss leaves its bound (``loss_factor``
    times its starting loss, as ``core.train.loss_bound`` sets it) or whose loss, gradient
    or update is not finite, as ``core.train.optimise`` decides for one start; its final
    loss is then NaN and its column is dropped from the work (gradient descent loses most
    of the lab's grid in its first iterations). ``progress(n)`` is told each chunk's size.
    """
    coef = coefficients(X, t)
    M = len(starts)
    out = BasinResult(
        final_loss=np.full(M, np.nan),
        first_converged=np.full(M, -1, dtype=np.int64),
        diverged_at=np.full(M, -1, dtype=np.int64),
    )
    for lo in range(0, M, chunk):
        sl = slice(lo, min(lo + chunk, M))
        w = np.array(starts[sl], dtype=float).T.copy()  # (2, m)
        state = optimizer.init(w)
        m = w.shape[1]
        idx = np.arange(m)  # the chunk's starts still being optimised (columns of w)
        first = np.full(m, -1, dtype=np.int64)
        died = np.full(m, -1, dtype=np.int64)
        final = np.full(m, np.nan)
        with np.errstate(all="ignore"):
            for k in range(iterations + 1):
                loss, grad = loss_and_grad(coef, w)
                # one finiteness test for loss and both gradients: a sum is finite only
                # if every term is
                ok = np.isfinite(loss + grad[0] + grad[1])
                if k == 0:
                    # train.loss_bound, start by start
                    bound = np.full(loss.shape, np.inf)
                    if loss_factor is not None:
                        np.multiply(loss_factor, loss, out=bound, where=loss > 0)
                else:
                    ok &= loss <= bound
                if k < iterations:
                    w, state, step = optimizer.step(w, grad, state, loss)
                    ok &= np.isfinite(w[0] + w[1] + step[0] + step[1])
                died[idx[~ok]] = k
                hit = ok & (loss < tolerance)
                hit[hit] = first[idx[hit]] < 0
                first[idx[hit]] = k
                if k == iterations:
                    final[idx[ok]] = loss[ok]
                    break
                if not ok.all():  # diverged starts need no more work: drop their columns
                    idx, w, bound = idx[ok], w[:, ok], bound[ok]
                    state = tuple(s[:, ok] for s in state)
                    if idx.size == 0:
                        break
        out.final_loss[sl] = final
        out.first_converged[sl] = first
        out.diverged_at[sl] = died
        if progress:
            progress(m)
    return out
