"""The linear RNN of lab 8: forward, loss, BPTT backward, and the closed form.

    s_k = x_k * wx + s_{k-1} * wrec,   s_0 = 0,   y = s_T,   loss = mean((y - t)^2)

Two paths give the same numbers:

- BPTT (``forward_states`` / ``backward``) is the lab's algorithm, written with the
  lab's arithmetic so that training reproduces its figures to the last bit.
- The closed form: y_i = wx * P_i(wrec) with P_i(r) = sum_k x_ik r^(T-k), so
  loss(wx, r) = wx^2 A(r) - 2 wx B(r) + C with A = mean P_i^2, B = mean t_i P_i,
  C = mean t_i^2. Surfaces and gradients for many (wx, wrec) at once cost
  O(n N T) for n distinct values of wrec instead of one forward pass per point.

Pure numpy: no configs, runs or files here.
"""

from __future__ import annotations

import numpy as np


def forward_states(X: np.ndarray, wx: float, wrec: float) -> np.ndarray:
    """All states, shape (N, T+1); column 0 is s_0 = 0 and column T the outputs."""
    S = np.zeros((X.shape[0], X.shape[1] + 1))
    for k in range(X.shape[1]):
        S[:, k + 1] = X[:, k] * wx + S[:, k] * wrec
    return S


def loss(y: np.ndarray, t: np.ndarray) -> float:
    """Mean squared error between outputs y and targets t."""
    return float(np.mean((t - y) ** 2))


def output_gradient(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Gradient of the squared error (y - t)^2 with respect to each output y."""
    return 2.0 * (y - t)


def backward(
    X: np.ndarray, S: np.ndarray, grad_out: np.ndarray, wrec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Backpropagation through time.

    Returns ``(grads, grad_over_time)``: ``grads = [dloss/dwx, dloss/dwrec]`` for the mean
    loss, shaped like the parameters, and ``grad_over_time`` (N, T+1), the output gradient
    ``grad_out`` carried back to every state: column k holds d(y - t)^2 / dS_k per sample.

    The floating-point operations are the lab's, in the lab's order, so results agree
    with its loop to the last bit; they are only batched: the backward recurrence
    g_{k-1} = g_k * wrec is a running product (``cumprod`` multiplies in the same order),
    each step's ``np.mean`` is the same pairwise sum along a contiguous row divided by N,
    and the per-step terms are accumulated in the lab's order k = T..1 (``cumsum``).
    """
    N, T = X.shape
    factors = np.empty((N, T + 1))
    factors[:, 0] = grad_out
    factors[:, 1:] = wrec
    grad_over_time = np.cumprod(factors, axis=1)[:, ::-1]  # column k: grad_out * wrec^(T-k)
    g = grad_over_time[:, 1:]  # the gradient at S_k for k = 1..T
    # rows = steps, reversed so that row 0 is k = T (the lab's first term)
    wx_terms = np.add.reduce(np.ascontiguousarray((g * X).T[::-1]), axis=1) / N
    wrec_terms = np.add.reduce(np.ascontiguousarray((g * S[:, :-1]).T[::-1]), axis=1) / N
    grads = np.array([np.cumsum(wx_terms)[-1], np.cumsum(wrec_terms)[-1]])
    return grads, np.ascontiguousarray(grad_over_time)


def loss_and_grad(X: np.ndarray, t: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """Loss and its gradient at w = [wx, wrec] by forward pass and BPTT."""
    S = forward_states(X, w[0], w[1])
    grads, _ = backward(X, S, output_gradient(S[:, -1], t), w[1])
    return loss(S[:, -1], t), grads


def state_gradients(X: np.ndarray, t: np.ndarray, wx: float, wrec: float) -> np.ndarray:
    """d loss / d S_k for k = 0..T, summed over samples: the lab's gradient over time."""
    S = forward_states(X, wx, wrec)
    _, grad_over_time = backward(X, S, output_gradient(S[:, -1], t), wrec)
    return grad_over_time.sum(axis=0) / X.shape[0]


# --- closed form ----------------------------------------------------------------------


def polynomials(X: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P_i(r) and P_i'(r) for every sample i and every r, each of shape (N, len(r)).

    Horner's scheme over the sequence: O(N T len(r)).
    """
    r = np.asarray(r, dtype=float).reshape(1, -1)
    P = np.zeros((X.shape[0], r.shape[1]))
    dP = np.zeros_like(P)
    for k in range(X.shape[1]):
        dP = dP * r + P
        P = P * r + X[:, k : k + 1]
    return P, dP


def quadratic_coefficients(
    X: np.ndarray, t: np.ndarray, r: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
    """A(r), B(r), C and the derivatives A'(r), B'(r) for every r.

    loss(wx, r) = wx^2 A(r) - 2 wx B(r) + C.
    """
    P, dP = polynomials(X, r)
    tc = t.reshape(-1, 1)
    A = np.mean(P * P, axis=0)
    B = np.mean(tc * P, axis=0)
    dA = np.mean(2.0 * P * dP, axis=0)
    dB = np.mean(tc * dP, axis=0)
    return A, B, float(np.mean(t * t)), dA, dB


def loss_surface(X: np.ndarray, t: np.ndarray, wx: np.ndarray, wrec: np.ndarray) -> np.ndarray:
    """Loss on the grid wx x wrec, shape (len(wrec), len(wx)) (rows follow wrec, as
    ``np.meshgrid(wx, wrec)`` lays them out). Cost O(len(wrec) N T + len(wx) len(wrec))."""
    wx = np.asarray(wx, dtype=float)
    A, B, C, _, _ = quadratic_coefficients(X, t, wrec)
    with np.errstate(over="ignore", invalid="ignore"):
        return (wx[None, :] ** 2) * A[:, None] - 2.0 * wx[None, :] * B[:, None] + C


def closed_form_loss_and_grad(
    X: np.ndarray, t: np.ndarray, wx: np.ndarray, wrec: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Loss and gradient at paired points (wx[j], wrec[j]), without BPTT.

    Returns ``(loss, grad)`` with grad of shape (len(wx), 2) = [dloss/dwx, dloss/dwrec].
    """
    wx = np.asarray(wx, dtype=float)
    A, B, C, dA, dB = quadratic_coefficients(X, t, wrec)
    value = wx * wx * A - 2.0 * wx * B + C
    grad = np.stack([2.0 * wx * A - 2.0 * B, wx * wx * dA - 2.0 * wx * dB], axis=-1)
    return value, grad
