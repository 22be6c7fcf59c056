"""``rnnlab-plot RUN_ID``: redraw a logged run's figures from the MLflow store alone."""

from __future__ import annotations

import sys
from pathlib import Path

from rnnlab import console
from rnnlab.cli.errors import Arguments
from rnnlab.jobs.compute import optimizer_label
from rnnlab.jobs.files import draw_figures
from rnnlab.store import client as client_mod
from rnnlab.store import lineage, uris
from rnnlab.store.records import RecordError, load_record


def redraw(run_id: str, tracking_uri: str, out: Path) -> list[Path]:
    """Draw the run's figures into ``out`` with the logged file names: the ones its config
    names, or every figure if its run drew none (plots=none)."""
    from rnnlab.config import FIGURES

    client = client_mod.client_for(tracking_uri, create=False)
    record = load_record(client, run_id)
    plots = dict(record.config["plots"])
    if not plots["enabled"] or not plots["figures"]:
        plots.update(enabled=True, figures=list(FIGURES))
    return draw_figures(
        out,
        plots,
        optimizer_label(record.config["optimizer"]),
        record.dataset,
        record.trajectory,
        record.curves,
    )


def main(argv: list[str] | None = None) -> None:
    argv = console.take_verbose_flag(sys.argv[1:] if argv is None else argv)
    console.quiet()
    parser = Arguments(
        prog="rnnlab-plot",
        description="Redraw a logged run's figures from the MLflow store, without retraining.",
    )
    parser.add_argument("--version", action="version", version=lineage.version_text())
    parser.add_argument("run_id", help="the MLflow run id")
    parser.add_argument(
        "--tracking-uri",
        default=uris.default_uri(),
        help=f"MLflow store (default: $MLFLOW_TRACKING_URI or {uris.DEFAULT_URI})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the figures (default: outputs/plots/RUN_ID)",
    )
    args = parser.parse_args(argv)
    out = args.out or Path("outputs") / "plots" / args.run_id
    try:
        written = redraw(args.run_id, args.tracking_uri, out)
    except (RecordError, uris.StoreError) as exc:
        console.error("rnnlab-plot", str(exc))
        sys.exit(2)
    except OSError as exc:  # the figures' folder
        console.error("rnnlab-plot", f"cannot write the figures into {out}: {exc.strerror}")
        sys.exit(2)
    for path in written:
        print(path)
