"""Benchmark: a default ``rnnlab`` run against the lab's notebook run as a script.

    uv run python benchmarks/run.py [--rounds 5]

The reference is ``benchmarks/lab8_notebook.py``: the seed lab with ``plt.show()``
replaced by saving its figures, same loops and grids. rnnlab does more (five figures at
400 x 400 instead of three at 50 x 50, the gradient check, an MLflow run with 3,500
metric values, the dataset, the model), and must stay within 2x of it. Both run
alternately on an existing store (a first rnnlab run creates it); medians.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from timing import BIN, ROOT, alternate, line, timed, verdict

TARGET = 2.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        timed([str(BIN / "rnnlab")], work)  # the store exists from here on
        medians = alternate(
            {
                "rnnlab": [str(BIN / "rnnlab")],
                "notebook": [
                    str(BIN / "python"),
                    str(ROOT / "benchmarks" / "lab8_notebook.py"),
                    str(work / "notebook"),
                ],
            },
            work,
            rounds,
        )
    ratio = medians["rnnlab"] / medians["notebook"]
    line("lab 8 notebook as a script (reference)", medians["notebook"], f"median of {rounds}")
    line("rnnlab, default run (5 figures, model), existing store", medians["rnnlab"])
    print(f"ratio {ratio:.2f}x the notebook (target <= {TARGET:g}x): {verdict(ratio <= TARGET)}")


if __name__ == "__main__":
    main()
