"""Benchmark: loss surfaces by the lab's loop against the closed form, and figure time.

    uv run python benchmarks/surface.py

Prints, in one run: the 50 x 50 lab surface by the lab's double loop of forward passes
(the reference, written as lab 8 writes it) against the closed form, as a ratio; the
1000 x 1000 surface by the closed form in seconds; and the time to draw and save every
figure of a default run. Targets on the 2-core machine: >= 100x at 50 x 50, < 0.1 s at
1000 x 1000.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from rnnlab.config import LAB_POINTS, PlotsConfig
from rnnlab.core import rnn
from rnnlab.core.data import make_dataset
from rnnlab.core.optim import RProp
from rnnlab.core.train import optimise
from rnnlab.jobs import compute, files


def lab_loss_surface(w1_low, w1_high, w2_low, w2_high, nb_of_ws, loss_func):
    """The lab's get_loss_surface, verbatim in substance: one forward pass per point."""
    w1 = np.linspace(w1_low, w1_high, num=nb_of_ws)
    w2 = np.linspace(w2_low, w2_high, num=nb_of_ws)
    ws1, ws2 = np.meshgrid(w1, w2)
    loss_ws = np.zeros((nb_of_ws, nb_of_ws))
    for i in range(nb_of_ws):
        for j in range(nb_of_ws):
            loss_ws[i, j] = loss_func(ws1[i, j], ws2[i, j])
    return ws1, ws2, loss_ws


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    d = make_dataset("lab8", 30, 20, 61185)
    X, t = d.X, d.t

    def lab_loop():
        return lab_loss_surface(
            -3, 3, -3, 3, 50, lambda a, b: rnn.loss(rnn.forward_states(X, a, b)[:, -1], t)
        )

    def closed(n):
        grid = np.linspace(-3, 3, n)
        return lambda: rnn.loss_surface(X, t, grid, grid)

    ref = lab_loop()[2]
    np.testing.assert_allclose(closed(50)(), ref, rtol=1e-9)  # the same numbers
    t_loop = best_of(lab_loop, 3)
    t_closed = best_of(closed(50), 50)
    t_big = best_of(closed(1000), 5)
    print(f"50 x 50 surface, lab loop (reference): {t_loop * 1e3:9.2f} ms")
    print(f"50 x 50 surface, closed form:          {t_closed * 1e3:9.3f} ms")
    print(f"  closed form is {t_loop / t_closed:,.0f}x faster (target >= 100x)")
    print(f"1000 x 1000 surface, closed form:      {t_big:9.4f} s (target < 0.1 s)")

    trajectory = optimise(X, t, (-1.5, 2.0), RProp(), 500)
    curves = compute.gradient_curves(d, LAB_POINTS)
    plot_cfg = {**PlotsConfig().__dict__}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        written = files.draw_figures(Path(tmp), plot_cfg, "RProp", d, trajectory, curves)
        t_fig = time.perf_counter() - t0
    print(
        f"draw and save all {len(written)} figures of a default run "
        f"({plot_cfg['resolution']} x {plot_cfg['resolution']}, {plot_cfg['format']}): "
        f"{t_fig:.2f} s ({t_fig / t_loop:.1f}x the lab's single 50 x 50 loop)"
    )


if __name__ == "__main__":
    main()
