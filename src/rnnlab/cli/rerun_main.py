"""The ``rnnlab-rerun`` command: its arguments, then a rerun of a run or of a whole
sweep (``cli.rerun``), or a sweep resumed (``--resume``: ``cli.resume``); one line and
exit 2 for what cannot be rerun, 130 on a signal."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from rnnlab import console
from rnnlab.cli.errors import user_error
from rnnlab.cli.rerun import rerun_run, rerun_sweep
from rnnlab.cli.resume import resume_sweep
from rnnlab.config import ConfigError
from rnnlab.jobs import text
from rnnlab.proc import signals
from rnnlab.store import client as client_mod
from rnnlab.store import lineage, query, runs, uris


def main(argv: list[str] | None = None) -> None:
    """``rnnlab-rerun RUN_ID [OVERRIDE ...] [--resume] [--tracking-uri URI] [--config-dir DIR]``."""
    argv = console.take_verbose_flag(sys.argv[1:] if argv is None else argv)
    console.quiet()
    signals.install_signal_handlers()
    parser = argparse.ArgumentParser(
        prog="rnnlab-rerun",
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
        console.error("rnnlab-rerun", "--resume runs the sweep's jobs as planned: no overrides")
        sys.exit(2)
    tracking_uri = uris.resolve_uri(args.tracking_uri)
    out_root = Path("outputs") / "reruns" / datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
    try:
        client = client_mod.client_for(tracking_uri, create=False)
        run = query.get_run(client, args.run_id)
        if args.resume:
            done = resume_sweep(client, args.run_id, tracking_uri, out_root, args.config_dir)
            if done is not None and (done.failed or done.not_started):
                sys.exit(1)
        elif run.data.tags.get("sweep") == "true":
            done = rerun_sweep(
                client, args.run_id, args.overrides, tracking_uri, out_root, args.config_dir
            )
            if done.failed or done.not_started:
                sys.exit(1)
        else:
            result = rerun_run(
                client, args.run_id, args.overrides, tracking_uri, out_root, args.config_dir
            )
            console.say(text.report(result))
            console.say(f"rerun of {args.run_id}")
    except KeyboardInterrupt as exc:
        why = exc.signal_name if isinstance(exc, signals.Interrupted) else "SIGINT"
        console.say(runs.interrupted_line("rnnlab-rerun", why), err=True)
        sys.exit(130)
    except (LookupError, ConfigError, uris.StoreError) as exc:  # RerunError: LookupError
        console.error("rnnlab-rerun", str(exc))
        sys.exit(2)
    except Exception as exc:
        message = user_error(exc)
        if message is None:
            raise
        console.error("rnnlab-rerun", message)
        sys.exit(2)
