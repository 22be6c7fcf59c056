"""Benchmark: ``rnnlab plots=none tracking.log_model=false`` against the import floor.

    uv run python benchmarks/startup.py [--rounds 7]

The floor is ``python -c "import mlflow, hydra, numpy, matplotlib.pyplot"``: what any
program using the same libraries pays before it does anything. A run without figures
or model (gradient check, 500 iterations, an MLflow run with 3,500 metric values on an
existing store) must stay within 1.3x of it. Alternating, medians.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from timing import BIN, alternate, line, timed, verdict

TARGET = 1.3
RUN = ["plots=none", "tracking.log_model=false"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        timed([str(BIN / "rnnlab"), *RUN], work)  # the store exists from here on
        medians = alternate(
            {
                "rnnlab": [str(BIN / "rnnlab"), *RUN],
                "floor": [
                    str(BIN / "python"),
                    "-c",
                    "import mlflow, hydra, numpy, matplotlib.pyplot",
                ],
            },
            work,
            rounds,
        )
    ratio = medians["rnnlab"] / medians["floor"]
    line("import floor: import mlflow, hydra, numpy, matplotlib.pyplot", medians["floor"])
    line("rnnlab plots=none tracking.log_model=false", medians["rnnlab"], f"median of {rounds}")
    print(f"ratio {ratio:.2f}x the floor (target <= {TARGET:g}x): {verdict(ratio <= TARGET)}")


if __name__ == "__main__":
    main()
