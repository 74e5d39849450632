"""Parameter sweeps: one ``liqsignals`` command over a grid of its options and a list of pairs,
on Ray (a local instance, or a cluster by address) or serially in this process.

>>> from liqsignals.sweep import load_spec, build_tasks, run_sweep   # doctest: +SKIP
>>> report = run_sweep("sweep.toml", "out/", serial=True)           # doctest: +SKIP

:mod:`liqsignals.sweep.spec` reads and checks the TOML spec, :mod:`liqsignals.sweep.tasks` makes
the task list and runs one task, :mod:`liqsignals.sweep.runner` runs the list (serial or Ray),
:mod:`liqsignals.sweep.results` keeps per-task records and writes ``results.parquet`` and
``summary.md``. The command line is ``liqsignals sweep`` (:mod:`liqsignals.sweep.cli`); the guide
is ``docs/sweeps.md``. Ray is the ``ray`` extra: ``pip install 'liqsignals[ray]'``.
"""

from __future__ import annotations

from liqsignals.sweep.results import RUN_COLUMNS, TaskStore, holm_view, results_frame
from liqsignals.sweep.runner import RunStats, check_address, run_ray, run_serial
from liqsignals.sweep.spec import SweepSpec, load_spec, parse_spec
from liqsignals.sweep.sweep import SweepReport, run_sweep
from liqsignals.sweep.tasks import Task, TaskOutcome, build_tasks, run_argv

__all__ = [
    "RUN_COLUMNS",
    "RunStats",
    "SweepReport",
    "SweepSpec",
    "Task",
    "TaskOutcome",
    "TaskStore",
    "build_tasks",
    "check_address",
    "holm_view",
    "load_spec",
    "parse_spec",
    "results_frame",
    "run_argv",
    "run_ray",
    "run_serial",
    "run_sweep",
]
