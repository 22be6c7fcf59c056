"""The ``rnnlab-rerun`` command: its arguments, then a rerun of a run or of a whole sweep
(``cli.rerun``), or a sweep resumed (``--resume``: ``cli.resume``), recorded in this
process (``cli.command``); one line and exit 2 for what cannot be rerun, 130 on a signal."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rnnlab import console
from rnnlab.cli import command
from rnnlab.cli.errors import Arguments, override_errors
from rnnlab.cli.rerun import rerun_run, rerun_sweep
from rnnlab.cli.resume import resume_sweep
from rnnlab.errors import USAGE_ERROR, ConfigError, user_error
from rnnlab.store import lineage, uris

PROG = "rnnlab-rerun"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = Arguments(
        prog=PROG,
        description="Rerun a logged run (or every job of a sweep) from the MLflow store, "
        "optionally with Hydra overrides on top, as a new run tagged rerun_of.",
    )
    parser.add_argument("--version", action="version", version=lineage.version_text())
    parser.add_argument("run_id", help="the MLflow run id (a run or a sweep's parent)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. optimizer=gd")
    parser.add_argument(
        "--tracking-uri",
        default=uris.default_uri(),
        help=f"MLflow store (default: $MLFLOW_TRACKING_URI or {uris.DEFAULT_URI})",
    )
    parser.add_argument(
        "--config-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a config folder the run was composed with (--config-dir, hydra.searchpath), "
        "at its new place; repeat for several (default: the folders the run logged)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="a sweep's parent: run only its jobs that did not finish (not started, "
        "KILLED, FAILED), under the same parent",
    )
    args = parser.parse_intermixed_args(argv)  # (--resume before or after the overrides)
    if args.resume and args.overrides:
        parser.error("--resume runs the sweep's jobs as planned: no overrides")
    return args


def main(argv: list[str] | None = None) -> None:
    """``rnnlab-rerun RUN_ID [OVERRIDE ...] [--resume] [--tracking-uri URI] [--config-dir DIR]``."""
    args = parse(console.take_verbose_flag(sys.argv[1:] if argv is None else argv))
    console.quiet()
    problem = override_errors(args.overrides)
    if problem is not None:
        console.error(PROG, problem)
        sys.exit(USAGE_ERROR)
    out_root = Path("outputs") / "reruns" / datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")

    def work(recorder: Any) -> int:
        from rnnlab.store import client as client_mod
        from rnnlab.store import query

        try:
            client = client_mod.client_for(uris.resolve_uri(args.tracking_uri), create=False)
            run = query.get_run(client, args.run_id)
            if args.resume:
                resume_sweep(recorder, client, args.run_id, out_root, args.config_dir)
            elif run.data.tags.get("sweep") == "true":
                rerun_sweep(
                    recorder, client, args.run_id, args.overrides, out_root, args.config_dir
                )
            else:
                rerun_run(recorder, client, args.run_id, args.overrides, out_root, args.config_dir)
                console.say(f"rerun of {args.run_id}")
        except (LookupError, ConfigError) as exc:  # RerunError, RecordError: LookupErrors
            console.error(PROG, str(exc))
            return USAGE_ERROR
        except Exception as exc:
            message = user_error(exc)
            if message is None:
                raise
            console.error(PROG, message)
            return USAGE_ERROR
        return 0

    sys.exit(command.run(work, PROG, fork=False))
