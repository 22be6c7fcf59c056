"""Benchmark: basin maps, all starts at once against the single-start BPTT loop.

    uv run python benchmarks/basin.py

Prints, in one run: 256 x 256 starts x 500 iterations for RProp and gradient descent by
the vectorised closed-form path, in seconds (target on the 2-core machine: <= 5 s); the
same number of start-iterations by the single-start BPTT loop (``train.optimise``),
estimated from a sample of starts and scaled, as a ratio; and the peak memory of a
1024 x 1024 grid (target: < 2 GiB).
"""

from __future__ import annotations

import resource
import time

import numpy as np

from rnnlab.core.basin import optimise_many
from rnnlab.core.data import make_dataset
from rnnlab.core.optim import GradientDescent, RProp
from rnnlab.core.train import optimise

ITERATIONS, TOLERANCE = 500, 0.2


def grid(n: int) -> np.ndarray:
    g = np.linspace(-3, 3, n)
    return np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)


def main() -> None:
    d = make_dataset("lab8", 30, 20, 61185)
    optimizers = [RProp(), GradientDescent(1e-5)]
    starts = grid(256)
    t0 = time.perf_counter()
    for opt in optimizers:
        optimise_many(d.X, d.t, starts, opt, ITERATIONS, TOLERANCE)
    t_vec = time.perf_counter() - t0
    print(
        f"vectorised: 256 x 256 starts x {ITERATIONS} iterations, RProp + GD: "
        f"{t_vec:.2f} s (target <= 5 s)"
    )

    rng = np.random.default_rng(0)
    sample = starts[rng.choice(len(starts), 200, replace=False)]
    t0 = time.perf_counter()
    done = 0  # start-iterations actually run (diverging starts stop early)
    for opt in optimizers:
        for s in sample:
            traj = optimise(d.X, d.t, tuple(s), opt, ITERATIONS)
            done += traj.iterations + 1
    t_loop = time.perf_counter() - t0
    per_start_iteration = t_loop / done
    # the vectorised path does every start-iteration (diverged starts keep computing)
    scaled = per_start_iteration * len(starts) * ITERATIONS * len(optimizers)
    print(
        f"single-start BPTT loop: {done} start-iterations in {t_loop:.2f} s; "
        f"scaled to the same work: {scaled:,.0f} s "
        f"= {scaled / t_vec:,.0f}x the vectorised path"
    )

    big = grid(1024)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0 = time.perf_counter()
    optimise_many(d.X, d.t, big, RProp(), 5, TOLERANCE)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"1024 x 1024 grid (5 iterations, {time.perf_counter() - t0:.1f} s): peak memory "
        f"{peak:.2f} GiB (was {before:.2f} GiB before; target < 2 GiB)"
    )


if __name__ == "__main__":
    main()
