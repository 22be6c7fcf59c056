"""BPTT against central differences, and the closed form against BPTT."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.core import rnn
from rnnlab.core.gradcheck import relative_error

weights = st.floats(-3.0, 3.0, allow_nan=False, allow_subnormal=False)


def numerical_grad(X, t, w, eps=1e-6):
    grads = []
    for i in range(2):
        plus, minus = np.array(w, float), np.array(w, float)
        plus[i] += eps
        minus[i] -= eps
        lp = rnn.loss(rnn.forward_states(X, *plus)[:, -1], t)
        lm = rnn.loss(rnn.forward_states(X, *minus)[:, -1], t)
        grads.append((lp - lm) / (2 * eps))
    return np.array(grads)


@settings(max_examples=150, deadline=None)
@given(wx=weights, wrec=weights, seed=st.integers(0, 2**31 - 1))
def test_bptt_matches_central_differences(wx, wrec, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(7, 9))
    t = X.sum(axis=1)
    _, grads = rnn.loss_and_grad(X, t, np.array([wx, wrec]))
    num = numerical_grad(X, t, [wx, wrec], eps=1e-6 * max(1.0, abs(wx), abs(wrec)))
    scale = max(1.0, np.abs(grads).max())  # gradients near 0: compare on the gradient's scale
    for i in range(2):
        assert abs(grads[i] - num[i]) <= 1e-5 * scale, (grads, num)


def test_bptt_at_exploding_points_lab_data(lab_data):
    for wx, wrec in [(1.0, 2.0), (1.0, -2.0), (-1.5, 2.0), (0.3, 2.9), (2.0, -2.7)]:
        _, grads = rnn.loss_and_grad(lab_data.X, lab_data.t, np.array([wx, wrec]))
        num = numerical_grad(lab_data.X, lab_data.t, [wx, wrec], eps=1e-7)
        assert abs(wrec) > 1
        for i in range(2):
            assert relative_error(grads[i], num[i]) < 1e-6


def test_gradient_over_time_matches_the_labs_six_stories(lab_data):
    X, t = lab_data.X, lab_data.t
    g = {
        p: rnn.state_gradients(X, t, *p)
        for p in [(2, 1), (1, 2), (1, -2), (1, 0), (1, 0.5), (1, -0.5)]
    }
    T = X.shape[1]
    np.testing.assert_allclose(g[(2, 1)], g[(2, 1)][-1])  # steady: wrec = 1 keeps it
    np.testing.assert_allclose(g[(1, 2)][:-1], 2 * g[(1, 2)][1:])  # explode: x2 per step back
    np.testing.assert_allclose(g[(1, -2)][:-1], -2 * g[(1, -2)][1:])  # and flips sign
    assert g[(1, 0)][T] != 0 and np.all(g[(1, 0)][:T] == 0)  # vanishes at once
    np.testing.assert_allclose(g[(1, 0.5)][:-1], 0.5 * g[(1, 0.5)][1:])
    np.testing.assert_allclose(g[(1, -0.5)][:-1], -0.5 * g[(1, -0.5)][1:])
    # d loss / d S_T for the mean loss is mean(2 (y - t))
    y = rnn.forward_states(X, 2, 1)[:, -1]
    assert np.isclose(g[(2, 1)][T], np.mean(2 * (y - t)), rtol=1e-14)


def bptt_surface(X, t, wx, wrec):
    return np.array([[rnn.loss(rnn.forward_states(X, a, r)[:, -1], t) for a in wx] for r in wrec])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    lim=st.floats(0.1, 3.0),
    n=st.integers(2, 9),
    N=st.integers(1, 12),
    T=st.integers(1, 25),
)
def test_closed_form_surface_equals_bptt(seed, lim, n, N, T):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(N, T)).round(2)
    t = X.sum(axis=1)
    wx = np.sort(rng.uniform(-lim, lim, n))
    wrec = np.sort(rng.uniform(-lim, lim, n))
    closed = rnn.loss_surface(X, t, wx, wrec)
    ref = bptt_surface(X, t, wx, wrec)
    # relative to the loss, or to the largest term of the quadratic where it cancels
    A, B, C, _, _ = rnn.quadratic_coefficients(X, t, wrec)
    terms = np.abs(wx[None, :] ** 2 * A[:, None]) + np.abs(2 * wx[None, :] * B[:, None]) + C
    # (<=: an input of zeros gives a loss of exactly 0 both ways, and a bound of 0)
    assert np.all(np.abs(closed - ref) <= 1e-9 * np.maximum(np.abs(ref), 1e-3 * terms))


def test_closed_form_surface_on_the_lab_grid(lab_data):
    wx = np.linspace(-3, 3, 50)
    wrec = np.linspace(-3, 3, 50)
    closed = rnn.loss_surface(lab_data.X, lab_data.t, wx, wrec)
    ref = bptt_surface(lab_data.X, lab_data.t, wx, wrec)
    np.testing.assert_allclose(closed, ref, rtol=1e-9)
    assert closed.shape == (50, 50)


@settings(max_examples=100, deadline=None)
@given(wx=weights, wrec=weights)
def test_closed_form_gradient_equals_bptt(lab_data, wx, wrec):
    X, t = lab_data.X, lab_data.t
    loss, grads = rnn.loss_and_grad(X, t, np.array([wx, wrec]))
    closed_loss, closed_grad = rnn.closed_form_loss_and_grad(X, t, np.array([wx]), np.array([wrec]))
    A, B, C, dA, dB = rnn.quadratic_coefficients(X, t, np.array([wrec]))
    loss_scale = max(abs(loss), 1e-3 * (wx * wx * A[0] + abs(2 * wx * B[0]) + C))
    assert abs(closed_loss[0] - loss) <= 1e-9 * loss_scale
    g_scale = [abs(2 * wx * A[0]) + abs(2 * B[0]), abs(wx * wx * dA[0]) + abs(2 * wx * dB[0])]
    for i in range(2):
        assert abs(closed_grad[0, i] - grads[i]) <= 1e-9 * max(abs(grads[i]), 1e-3 * g_scale[i])


def lab_backward_gradient(X, S, grad_out, wRec):
    """Lab 8's backward_gradient, verbatim: the reference for bitwise equality."""
    grad_over_time = np.zeros((X.shape[0], X.shape[1] + 1))
    grad_over_time[:, -1] = grad_out
    wx_grad = 0
    wRec_grad = 0
    for k in range(X.shape[1], 0, -1):
        wx_grad += np.sum(np.mean(grad_over_time[:, k] * X[:, k - 1], axis=0))
        wRec_grad += np.sum(np.mean(grad_over_time[:, k] * S[:, k - 1]), axis=0)
        grad_over_time[:, k - 1] = grad_over_time[:, k] * wRec
    return (wx_grad, wRec_grad), grad_over_time


@settings(max_examples=300, deadline=None)
@given(
    wx=weights,
    wrec=weights,
    seed=st.integers(0, 2**31 - 1),
    N=st.integers(1, 40),
    T=st.integers(1, 30),
)
def test_batched_bptt_is_bitwise_the_labs_loop(wx, wrec, seed, N, T):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(N, T)).round(2)
    t = X.sum(axis=1)
    S = rnn.forward_states(X, wx, wrec)
    grad_out = rnn.output_gradient(S[:, -1], t)
    (ref_wx, ref_wrec), ref_got = lab_backward_gradient(X, S, grad_out, wrec)
    grads, got = rnn.backward(X, S, grad_out, wrec)
    assert grads[0] == ref_wx and grads[1] == ref_wrec
    np.testing.assert_array_equal(got, ref_got)
