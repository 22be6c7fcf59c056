"""Benchmark: the test suite's wall time, against its targets.

    uv run python benchmarks/tests.py [--fast-only]

``uv run pytest -m "not slow"`` (target: under 20 s) and ``uv run pytest`` (the whole
suite, as CI runs it; target: 3 minutes or less). The reference for both is a plain
``python -c pass`` start-up, measured in the same run (an absolute target on a noisy
machine needs a sanity line).
"""

from __future__ import annotations

import argparse
import time

from timing import BIN, ROOT, line, timed, verdict

FAST, FULL = 20.0, 180.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fast-only", action="store_true")
    args = parser.parse_args()
    line("python -c pass (reference)", timed([str(BIN / "python"), "-c", "pass"], ROOT))
    t0 = time.perf_counter()
    timed([str(BIN / "pytest"), "-q", "-m", "not slow", "-p", "no:cacheprovider"], ROOT)
    fast = time.perf_counter() - t0
    line('pytest -m "not slow"', fast, f"target < {FAST:g} s: {verdict(fast < FAST)}")
    if args.fast_only:
        return
    t0 = time.perf_counter()
    timed([str(BIN / "pytest"), "-q", "-p", "no:cacheprovider"], ROOT)
    full = time.perf_counter() - t0
    line("pytest (the whole suite)", full, f"target <= {FULL:g} s: {verdict(full <= FULL)}")


if __name__ == "__main__":
    main()
