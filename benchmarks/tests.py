"""Benchmark: the test suite's wall time, against its targets.

    uv run python benchmarks/tests.py [--fast-only]

``uv run pytest -m "not slow"`` (target: under 20 s); the developer's tier, every
test but the acceptance suites (``-m "not faults and not team and not readme"``;
target: 3 minutes or less); and, unless --fast-only, the acceptance suites
(``-m "faults or team or readme"``; target: 10 minutes more). The reference is a plain
``python -c pass`` start-up, measured in the same run (an absolute target on a noisy
machine needs a sanity line).
"""

from __future__ import annotations

import argparse
import time

from timing import BIN, ROOT, line, timed, verdict

FAST, TIER, ACCEPTANCE = 20.0, 180.0, 600.0


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
    for name, marks, target in (
        ("developer's tier", "not faults and not team and not readme", TIER),
        ("acceptance suites", "faults or team or readme", ACCEPTANCE),
    ):
        t0 = time.perf_counter()
        timed([str(BIN / "pytest"), "-q", "-m", marks, "-p", "no:cacheprovider"], ROOT)
        took = time.perf_counter() - t0
        line(
            f'pytest -m "{marks}" ({name})',
            took,
            f"target <= {target:g} s: {verdict(took <= target)}",
        )


if __name__ == "__main__":
    main()
