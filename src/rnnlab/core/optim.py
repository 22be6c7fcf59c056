"""Step rules: RProp as lab 8 writes it, gradient descent (optionally clipped), and the
remedies for exploding gradients used today: momentum, Adam, iRprop- and iRprop+.

Each rule works elementwise on arrays whose first axis holds the weights (wx, wrec), so
the same function steps one start (w of shape (2,)) or many starts at once (shape
(2, M)). A rule is a frozen dataclass of hyperparameters with ``init(w) -> state`` and
``step(w, grad, state, loss) -> (w_new, state_new, step_size)``; the state is a tuple of
arrays shaped like ``w`` (so a basin map can drop a start's column from each), and
``loss`` is the loss at ``w`` (only iRprop+ reads it). ``step_size`` is the size of the
update each weight took (RProp: its Delta).

References: Riedmiller and Braun (1993) for RProp; Pascanu, Mikolov and Bengio (2013),
"On the difficulty of training recurrent neural networks", for clipping by the
gradient's norm; Polyak (1964) and Sutskever et al. (2013) for momentum and its Nesterov
form (as torch.optim.SGD writes them); Kingma and Ba (2015), Algorithm 1, for Adam;
Igel and Hüsken (2000), "Improving the Rprop learning algorithm", for iRprop- and iRprop+.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

State = tuple[np.ndarray, ...]  # a rule's state: arrays shaped like w (none, for gd)


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

    def init(self, w: np.ndarray) -> State:
        """(previous gradient sign, Delta)."""
        return np.zeros_like(w, dtype=float), np.full_like(w, self.initial_step, dtype=float)

    def step(
        self, w: np.ndarray, grad: np.ndarray, state: State, loss=None
    ) -> tuple[np.ndarray, State, np.ndarray]:
        prev_sign, delta = state
        sign = np.sign(grad)
        delta = np.where(sign == prev_sign, delta * self.eta_plus, delta * self.eta_minus)
        if self.step_min is not None or self.step_max is not None:
            delta = np.clip(delta, self.step_min, self.step_max)
        return w - sign * delta, (sign, delta), delta


@dataclass(frozen=True)
class GradientDescent:
    """Gradient descent: w -= learning_rate * grad. Its step size is |lr * grad|.

    With ``clip_norm``, a gradient whose norm (over both weights, as Pascanu et al.
    clip the whole gradient vector) exceeds it is first rescaled to that norm:
    grad *= clip_norm / ||grad||.
    """

    learning_rate: float = 1e-3
    clip_norm: float | None = None

    name = "gd"

    def init(self, w: np.ndarray) -> State:
        return ()

    def step(
        self, w: np.ndarray, grad: np.ndarray, state: State, loss=None
    ) -> tuple[np.ndarray, State, np.ndarray]:
        if self.clip_norm is not None:
            norm = np.hypot(grad[0], grad[1])
            grad = grad * np.where(norm > self.clip_norm, self.clip_norm / norm, 1.0)
        update = self.learning_rate * grad
        return w - update, state, np.abs(update)


@dataclass(frozen=True)
class Momentum:
    """Heavy-ball momentum, as torch.optim.SGD writes it (no dampening):
    v = momentum * v + grad; w -= lr * v, or with ``nesterov`` w -= lr * (grad +
    momentum * v). v starts at 0, so the first update is lr * grad."""

    learning_rate: float = 1e-6
    momentum: float = 0.9
    nesterov: bool = False

    name = "momentum"

    def init(self, w: np.ndarray) -> State:
        return (np.zeros_like(w, dtype=float),)

    def step(
        self, w: np.ndarray, grad: np.ndarray, state: State, loss=None
    ) -> tuple[np.ndarray, State, np.ndarray]:
        (v,) = state
        v = self.momentum * v + grad
        direction = grad + self.momentum * v if self.nesterov else v
        update = self.learning_rate * direction
        return w - update, (v,), np.abs(update)


@dataclass(frozen=True)
class Adam:
    """Adam as Kingma and Ba write it (Algorithm 1): m = b1 m + (1 - b1) g,
    v = b2 v + (1 - b2) g^2, m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t),
    w -= lr * m_hat / (sqrt(v_hat) + epsilon)."""

    learning_rate: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8

    name = "adam"

    def init(self, w: np.ndarray) -> State:
        """(m, v, t): the moments and the step count (kept per weight, like w)."""
        zeros = np.zeros_like(w, dtype=float)
        return zeros, zeros.copy(), zeros.copy()

    def step(
        self, w: np.ndarray, grad: np.ndarray, state: State, loss=None
    ) -> tuple[np.ndarray, State, np.ndarray]:
        m, v, t = state
        t = t + 1.0
        m = self.beta1 * m + (1.0 - self.beta1) * grad
        v = self.beta2 * v + (1.0 - self.beta2) * (grad * grad)
        m_hat = m / (1.0 - self.beta1**t)
        v_hat = v / (1.0 - self.beta2**t)
        update = self.learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)
        return w - update, (m, v, t), np.abs(update)


def _irprop_steps(rule, prev: np.ndarray, grad: np.ndarray, delta: np.ndarray):
    """iRprop's Delta update, shared by both variants: (sign agreement, new Delta).
    Kept sign: grow to at most step_max; flipped: shrink to at least step_min; no
    previous sign (0): unchanged."""
    same = np.sign(prev) * np.sign(grad)
    delta = np.where(
        same > 0,
        np.minimum(delta * rule.eta_plus, rule.step_max),
        np.where(same < 0, np.maximum(delta * rule.eta_minus, rule.step_min), delta),
    )
    return same, delta


@dataclass(frozen=True)
class IRPropMinus:
    """iRprop- (Igel and Hüsken 2000): per weight, if the gradient keeps its sign,
    Delta = min(Delta * eta_plus, step_max); if it flips, Delta = max(Delta * eta_minus,
    step_min) and the gradient is taken as 0 (no move now, and no flip seen next time);
    otherwise Delta stays. Then w -= sign(grad) * Delta."""

    initial_step: float = 0.001
    eta_plus: float = 1.2
    eta_minus: float = 0.5
    step_min: float = 0.0
    step_max: float = 50.0

    name = "irprop_minus"

    def init(self, w: np.ndarray) -> State:
        """(previous gradient, Delta)."""
        return np.zeros_like(w, dtype=float), np.full_like(w, self.initial_step, dtype=float)

    def step(
        self, w: np.ndarray, grad: np.ndarray, state: State, loss=None
    ) -> tuple[np.ndarray, State, np.ndarray]:
        prev, delta = state
        same, delta = _irprop_steps(self, prev, grad, delta)
        grad = np.where(same < 0, 0.0, grad)
        update = np.sign(grad) * delta
        return w - update, (grad, delta), np.abs(update)


@dataclass(frozen=True)
class IRPropPlus:
    """iRprop+ (Igel and Hüsken 2000): iRprop- with weight backtracking. Where the
    gradient's sign flips, Delta shrinks, the gradient is taken as 0 and, only if the
    loss rose since the last step, that weight's last update is undone; elsewhere
    w += dw with dw = -sign(grad) * Delta (Delta grown where the sign held)."""

    initial_step: float = 0.001
    eta_plus: float = 1.2
    eta_minus: float = 0.5
    step_min: float = 0.0
    step_max: float = 50.0

    name = "irprop_plus"

    def init(self, w: np.ndarray) -> State:
        """(previous gradient, Delta, previous update dw, previous loss)."""
        zeros = np.zeros_like(w, dtype=float)
        return zeros, np.full_like(w, self.initial_step, dtype=float), zeros.copy(), zeros + np.inf

    def step(
        self, w: np.ndarray, grad: np.ndarray, state: State, loss=None
    ) -> tuple[np.ndarray, State, np.ndarray]:
        prev, delta, prev_dw, prev_loss = state
        loss = prev_loss if loss is None else np.broadcast_to(loss, np.shape(w)).astype(float)
        same, delta = _irprop_steps(self, prev, grad, delta)
        flip = same < 0
        dw = np.where(flip, np.where(loss > prev_loss, -prev_dw, 0.0), -np.sign(grad) * delta)
        grad = np.where(flip, 0.0, grad)
        return w + dw, (grad, delta, dw, loss), np.abs(dw)


Optimizer = RProp | GradientDescent | Momentum | Adam | IRPropMinus | IRPropPlus
