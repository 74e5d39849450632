"""Walk-forward backtests with freqtrade: hyperopt on each training span, backtests of the tuned
and the default parameters on the test span that follows, folds and random states as Ray tasks
(``liqsignals walkforward``; :mod:`liqsignals.walkforward.cli`)."""

from __future__ import annotations

from liqsignals.walkforward.folds import Fold, make_folds
from liqsignals.walkforward.report import WalkForwardReport, build_report, write_report
from liqsignals.walkforward.runner import (
    RayExecutor,
    SerialExecutor,
    WalkForwardPlan,
    best_hyperopt,
    run_walkforward,
)
from liqsignals.walkforward.tasks import (
    BacktestTask,
    HyperoptTask,
    Payload,
    build_payload,
    run_task,
)

__all__ = [
    "BacktestTask",
    "Fold",
    "HyperoptTask",
    "Payload",
    "RayExecutor",
    "SerialExecutor",
    "WalkForwardPlan",
    "WalkForwardReport",
    "best_hyperopt",
    "build_payload",
    "build_report",
    "make_folds",
    "run_task",
    "run_walkforward",
    "write_report",
]
