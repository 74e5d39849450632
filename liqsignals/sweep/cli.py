"""``liqsignals sweep SPEC.toml --out DIR [--address ADDR] [--workers N] [--serial] [--json]``.

Runs the spec's command once per (grid cell, pair) as Ray tasks (a local Ray instance, or the
cluster at ``--address``; ``auto`` joins the one ``ray start`` started on this machine), or in
this process with ``--serial``; writes ``DIR/results.parquet`` and ``DIR/summary.md``. A rerun
skips the tasks already in ``DIR``. Exit status 0 when every task gave a result, 1 when a task
ended with an error or was lost in Ray (rerun to retry those), 2 for bad input. See
:mod:`liqsignals.sweep` and ``docs/sweeps.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``sweep``."""
    p = subparsers.add_parser(
        "sweep",
        help="run an evaluate/calibrate command over a grid of options and pairs, on Ray",
        description="One task per (grid cell, pair) of SPEC.toml, on a local Ray instance, a "
        "Ray cluster (--address) or in this process (--serial); results in DIR/results.parquet "
        "and DIR/summary.md; a rerun resumes.",
    )
    p.add_argument("spec", type=Path, metavar="SPEC.toml", help="the sweep spec (docs/sweeps.md)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="results folder")
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join: HOST:PORT of the head, or auto (default: start a local Ray)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local Ray: CPUs to use (default all); cluster: most tasks in flight",
    )
    p.add_argument("--serial", action="store_true", help="run the tasks in this process, no Ray")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print the run's counts as one JSON object")
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from liqsignals.sweep.sweep import run_sweep

    report = run_sweep(
        args.spec, args.out, serial=args.serial, address=args.address, workers=args.workers,
        progress=not args.no_progress,
    )  # fmt: skip
    for task, why in report.stats.failed:
        print(f"lost in Ray (rerun to retry): {task.pair} {task.params}: {why}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(
            f"{report.tasks} task(s): {report.skipped} already done, {report.ran} ran, "
            f"{report.errors} with an error, {report.failed} lost; results in "
            f"{Path(report.out) / 'results.parquet'}, summary in {Path(report.out) / 'summary.md'}"
        )
    return 1 if (report.errors or report.failed) else 0
