"""Lab 8, the notebook (shared/seed/000_baddf78a0ac18ade.txt), as a script: the reference
for rnnlab's speed. The lab's code, loops and grids unchanged; ``plt.show()`` replaced by
saving each open figure (PNG) into the folder given as the first argument (default: a
temporary one), and the notebook's Polish comments dropped.

    uv run python benchmarks/lab8_notebook.py [OUT_DIR]
"""

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import cm  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="lab8-"))
OUT.mkdir(parents=True, exist_ok=True)
_saved = 0


def show():
    """The notebook's plt.show(): here, every open figure saved, then closed."""
    global _saved
    for num in plt.get_fignums():
        plt.figure(num).savefig(OUT / f"figure_{_saved}.png")
        _saved += 1
    plt.close("all")


# [1]
np.random.seed(seed=61185)
nb_of_samples = 30
sequence_len = 20
X = np.random.uniform(size=(nb_of_samples, sequence_len))
X = np.ceil(X * 3) / 3
X = np.round(X, 2)
X[X == 0.67] = 0.66
t = np.sum(X, axis=1)
print("Input: \n", X)
print("Target (suma liczb w sekwencji): \n", t)


# [2]
def update_state(xk, sk, wx, wRec):
    return xk * wx + sk * wRec


def forward_states(X, wx, wRec):
    S = np.zeros((X.shape[0], X.shape[1] + 1))
    for k in range(0, X.shape[1]):
        S[:, k + 1] = update_state(X[:, k], S[:, k], wx, wRec)
    return S


def loss(y, t):
    return np.mean((t - y) ** 2)


# [3]
def output_gradient(y, t):
    return 2.0 * (y - t)


def backward_gradient(X, S, grad_out, wRec):
    grad_over_time = np.zeros((X.shape[0], X.shape[1] + 1))
    grad_over_time[:, -1] = grad_out
    wx_grad = 0
    wRec_grad = 0
    for k in range(X.shape[1], 0, -1):
        wx_grad += np.sum(np.mean(grad_over_time[:, k] * X[:, k - 1], axis=0))
        wRec_grad += np.sum(np.mean(grad_over_time[:, k] * S[:, k - 1]), axis=0)
        grad_over_time[:, k - 1] = grad_over_time[:, k] * wRec
    return (wx_grad, wRec_grad), grad_over_time


# [4]
params = [1.2, 1.2]
eps = 1e-7
S = forward_states(X, params[0], params[1])
grad_out = output_gradient(S[:, -1], t)
backprop_grads, grad_over_time = backward_gradient(X, S, grad_out, params[1])
for p_idx, _ in enumerate(params):
    grad_backprop = backprop_grads[p_idx]
    params[p_idx] += eps
    plus_loss = loss(forward_states(X, params[0], params[1])[:, -1], t)
    params[p_idx] -= 2 * eps
    min_loss = loss(forward_states(X, params[0], params[1])[:, -1], t)
    params[p_idx] += eps
    grad_num = (plus_loss - min_loss) / (2 * eps)
    if not np.isclose(grad_num, grad_backprop):
        raise ValueError(
            f"Numerical gradient of {grad_num:.6f} is not close to "
            f"the backpropagation gradient of {grad_backprop:.6f}!"
        )
print("No gradient errors found")

# [5]
points = [(2, 1, "r"), (1, 2, "b"), (1, -2, "m"), (1, 0, "c"), (1, 0.5, "g"), (1, -0.5, "y")]


def get_loss_surface(w1_low, w1_high, w2_low, w2_high, nb_of_ws, loss_func):
    w1 = np.linspace(w1_low, w1_high, num=nb_of_ws)
    w2 = np.linspace(w2_low, w2_high, num=nb_of_ws)
    ws1, ws2 = np.meshgrid(w1, w2)
    loss_ws = np.zeros((nb_of_ws, nb_of_ws))
    for i in range(nb_of_ws):
        for j in range(nb_of_ws):
            loss_ws[i, j] = loss_func(ws1[i, j], ws2[i, j])
    return ws1, ws2, loss_ws


def plot_surface(ax, ws1, ws2, loss_ws):
    surf = ax.contourf(
        ws1, ws2, loss_ws, levels=np.logspace(-0.2, 8, 30), cmap=cm.viridis, norm=LogNorm()
    )
    ax.set_xlabel("$w_{in}$", fontsize=12)
    ax.set_ylabel("$w_{rec}$", fontsize=12)
    return surf


def plot_points(ax, points):
    for wx, wRec, c in points:
        ax.plot(wx, wRec, c + "o", linewidth=2)


def get_loss_surface_figure(loss_func, points):
    fig = plt.figure(figsize=(10, 4))
    ax_1 = fig.add_subplot(1, 2, 1)
    ws1_1, ws2_1, loss_ws_1 = get_loss_surface(-3, 3, -3, 3, 50, loss_func)
    surf_1 = plot_surface(ax_1, ws1_1, ws2_1, loss_ws_1 + 1)
    plot_points(ax_1, points)
    ax_1.set_xlim(-3, 3)
    ax_1.set_ylim(-3, 3)
    ax_2 = fig.add_subplot(1, 2, 2)
    ws1_2, ws2_2, loss_ws_2 = get_loss_surface(-0.1, 2.1, -0.1, 2.1, 50, loss_func)
    plot_surface(ax_2, ws1_2, ws2_2, loss_ws_2 + 1)
    plot_points(ax_2, points)
    ax_2.set_xlim(-0.1, 2.1)
    ax_2.set_ylim(-0.1, 2.1)
    fig.subplots_adjust(right=0.8)
    cax = fig.add_axes([0.85, 0.12, 0.03, 0.78])
    cbar = fig.colorbar(surf_1, ticks=np.logspace(0, 8, 9), cax=cax)
    cbar.ax.set_ylabel("$\\xi$", fontsize=12, rotation=0, labelpad=20)
    cbar.set_ticklabels([f"{i:0e}" for i in np.logspace(0, 8, 9)])
    fig.suptitle("Loss surface", fontsize=15)
    return fig


def plot_gradient_over_time(points, get_grad_over_time):
    fig = plt.figure(figsize=(7, 3))
    plt.subplot(111)
    for wx, wRec, c in points:
        grad_over_time = get_grad_over_time(wx, wRec)
        x = np.arange(-grad_over_time.shape[1] + 1, 1, 1)
        plt.plot(
            x,
            np.sum(grad_over_time, axis=0),
            c + "-",
            label=f"({wx}, {wRec})",
            linewidth=1,
            markersize=8,
        )
    plt.xlim(0, -grad_over_time.shape[1] + 1)
    plt.xticks(x)
    plt.yscale("symlog")
    plt.yticks([10**8, 10**6, 10**4, 10**2, 0, -(10**2), -(10**4), -(10**6), -(10**8)])
    plt.xlabel("timestep k", fontsize=12)
    plt.ylabel("$\\frac{\\partial \\xi}{\\partial S_{[k]}}$", fontsize=20, rotation=0)
    plt.title("Unstability of gradient in backward propagation.\n(backpropagate from left to right)")
    leg = plt.legend(loc="center left", bbox_to_anchor=(1, 0.5), frameon=False, numpoints=1)
    leg.set_title("$({w_x}, {w_{rec}})$", prop={"size": 15})
    fig.subplots_adjust(right=0.8)


def get_grad_over_time(wx, wRec):
    S = forward_states(X, wx, wRec)
    grad_out = output_gradient(S[:, -1], t).sum()
    _, grad_over_time = backward_gradient(X, S, grad_out, wRec)
    return grad_over_time


# [6]
fig = get_loss_surface_figure(lambda w1, w2: loss(forward_states(X, w1, w2)[:, -1], t), points)
plot_gradient_over_time(points, get_grad_over_time)
show()


# [7]
def update_rprop(X, t, W, W_prev_sign, W_delta, eta_p, eta_n):
    S = forward_states(X, W[0], W[1])
    grad_out = output_gradient(S[:, -1], t)
    W_grads, _ = backward_gradient(X, S, grad_out, W[1])
    W_sign = np.sign(W_grads)
    for i, _ in enumerate(W):
        if W_sign[i] == W_prev_sign[i]:
            W_delta[i] *= eta_p
        else:
            W_delta[i] *= eta_n
    return W_delta, W_sign


# [8]
eta_p = 1.2
eta_n = 0.5
W = [-1.5, 2]
W_delta = [0.001, 0.001]
W_sign = [0, 0]
ls_of_ws = [(W[0], W[1])]
for i in range(500):
    W_delta, W_sign = update_rprop(X, t, W, W_sign, W_delta, eta_p, eta_n)
    for i, _ in enumerate(W):
        W[i] -= W_sign[i] * W_delta[i]
    ls_of_ws.append((W[0], W[1]))
print(f"Final weights are: wx = {W[0]:.4f}, wRec = {W[1]:.4f}")


# [9]
def plot_optimisation(ls_of_ws, loss_func):
    ws1, ws2 = zip(*ls_of_ws, strict=True)
    fig = plt.figure(figsize=(10, 4))
    ax_1 = fig.add_subplot(1, 2, 1)
    ws1_1, ws2_1, loss_ws_1 = get_loss_surface(-3, 3, -3, 3, 50, loss_func)
    surf_1 = plot_surface(ax_1, ws1_1, ws2_1, loss_ws_1 + 1)
    ax_1.plot(ws1, ws2, "wo", markersize=3)
    ax_1.scatter(ws1[-1], ws2[-1], color="w", marker="*", s=150, edgecolors="k")
    ax_1.set_xlim([-3, 3])
    ax_1.set_ylim([-3, 3])
    ax_2 = fig.add_subplot(1, 2, 2)
    ws1_2, ws2_2, loss_ws_2 = get_loss_surface(0, 2, 0, 2, 50, loss_func)
    plot_surface(ax_2, ws1_2, ws2_2, loss_ws_2 + 1)
    ax_2.set_xlim([0, 2])
    ax_2.set_ylim([0, 2])
    plot_surface(ax_2, ws1_2, ws2_2, loss_ws_2)
    ax_2.plot(ws1, ws2, "wo", label="RProp iterations", markersize=3)
    ax_2.scatter(ws1[-1], ws2[-1], color="w", marker="*", s=150, edgecolors="k")
    ax_2.legend()
    fig.subplots_adjust(right=0.8)
    cax = fig.add_axes([0.85, 0.12, 0.03, 0.78])
    cbar = fig.colorbar(surf_1, ticks=np.logspace(0, 8, 9), cax=cax)
    cbar.ax.set_ylabel("$\\xi$", fontsize=12, rotation=0, labelpad=20)
    cbar.set_ticklabels([f"{i: .0e}" for i in np.logspace(0, 8, 9)])
    plt.suptitle("Loss surface", fontsize=12)
    show()


plot_optimisation(ls_of_ws, lambda w1, w2: loss(forward_states(X, w1, w2)[:, -1], t))
show()

# [11]
test_inpt = np.asmatrix(
    [[0.66, 0.33, 0.33, 0.66, 1, 0.66, 0.33, 0.33, 0.66, 1, 0.66, 0.33, 0.33, 0.66, 1, 0.66]
     + [0.33, 0.33, 0.66, 1]]
)
test_outpt = forward_states(test_inpt, W[0], W[1])[:, -1]
sum_test_inpt = np.sum(test_inpt)
print("Input: \n", test_inpt)
print("Output from model: \n", test_outpt)
print("Expected output (sum of input): \n", sum_test_inpt)
