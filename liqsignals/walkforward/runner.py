"""Schedule a walk-forward run: hyperopt per (fold, random state) and the default-parameter
backtests first, then each fold's tuned backtest as soon as its hyperopt tasks are done.

Two executors run the same tasks: :class:`SerialExecutor` in this process, one after another,
and :class:`RayExecutor` as Ray tasks (``ray.init()`` starts a local instance; an address
joins a cluster). The payload travels once through Ray's object store.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from liqsignals.walkforward.folds import Fold
from liqsignals.walkforward.tasks import (
    DEFAULT_LOSS,
    BacktestTask,
    HyperoptTask,
    Payload,
    run_task,
)

__all__ = [
    "Executor",
    "RayExecutor",
    "SerialExecutor",
    "WalkForwardPlan",
    "best_hyperopt",
    "run_walkforward",
]

Task = HyperoptTask | BacktestTask


class Executor(Protocol):
    """Runs tasks; :meth:`submit` queues one, :meth:`finished` yields results as they end."""

    def submit(self, task: Task) -> None: ...

    def finished(self) -> Iterator[tuple[Task, dict[str, Any]]]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Every task in this process, in submission order (``--serial``)."""

    def __init__(self, payload: Payload) -> None:
        self.payload = payload
        self.queue: list[Task] = []

    def submit(self, task: Task) -> None:
        self.queue.append(task)

    def finished(self) -> Iterator[tuple[Task, dict[str, Any]]]:
        while self.queue:
            task = self.queue.pop(0)
            yield task, run_task(self.payload, task)

    def close(self) -> None:
        pass


class RayExecutor:
    """Ray tasks of one CPU each; ``address=None`` starts a local Ray instance."""

    def __init__(self, payload: Payload, address: str | None = None) -> None:
        # the sweep's connection rules: the address is checked before Ray is asked, a local
        # instance gets a bounded object store and no dashboard, a failure is a CLIError
        from liqsignals.sweep.runner import connect

        self.ray = connect(address, None)
        self.started = True
        self.remote = self.ray.remote(num_cpus=1, max_retries=1)(run_task)
        self.payload_ref = self.ray.put(payload)
        self.pending: dict[Any, Task] = {}

    def submit(self, task: Task) -> None:
        self.pending[self.remote.remote(self.payload_ref, task)] = task

    def finished(self) -> Iterator[tuple[Task, dict[str, Any]]]:
        while self.pending:
            done, _ = self.ray.wait(list(self.pending), num_returns=1)
            ref = done[0]
            task = self.pending.pop(ref)
            yield task, self.ray.get(ref)

    def close(self) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending.clear()
        if self.started:
            self.ray.shutdown()


@dataclass(frozen=True)
class WalkForwardPlan:
    """The folds and the hyperopt settings of a run."""

    folds: Sequence[Fold]
    epochs: int
    random_states: Sequence[int]
    loss: str = DEFAULT_LOSS
    spaces: tuple[str, ...] = ("buy", "sell")

    def hyperopt_tasks(self) -> list[HyperoptTask]:
        return [
            HyperoptTask(f.index, rs, f.train_timerange, self.epochs, self.loss, self.spaces)
            for f in self.folds
            for rs in self.random_states
        ]

    def default_tasks(self) -> list[BacktestTask]:
        return [BacktestTask(f.index, "default", f.test_timerange) for f in self.folds]


def best_hyperopt(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The kept hyperopt result of a fold: lowest loss, the lowest random state on a tie."""
    return min(results, key=lambda r: (r["loss"], r["random_state"]))


@dataclass
class RunRecord:
    """Every task's result of a run, by kind."""

    hyperopt: list[dict[str, Any]] = field(default_factory=list)
    backtests: list[dict[str, Any]] = field(default_factory=list)


def _log(text: str) -> None:
    print(f"walkforward: {text}", file=sys.stderr, flush=True)


def run_walkforward(
    plan: WalkForwardPlan,
    executor: Executor,
    progress: Callable[[str], None] = _log,
) -> RunRecord:
    """Run every task of ``plan`` on ``executor``; progress lines go to ``progress``."""
    record = RunRecord()
    hyper = plan.hyperopt_tasks()
    defaults = plan.default_tasks()
    total = len(hyper) + 2 * len(defaults)
    by_fold: dict[int, list[dict[str, Any]]] = {f.index: [] for f in plan.folds}
    fold_of = {f.index: f for f in plan.folds}
    first: list[Task] = [*hyper, *defaults]
    for task in first:
        executor.submit(task)
    progress(f"{total} tasks: {len(hyper)} hyperopt, {2 * len(defaults)} backtests")
    t0 = time.monotonic()
    done = 0
    try:
        for task, result in executor.finished():
            done += 1
            elapsed = time.monotonic() - t0
            if isinstance(task, HyperoptTask):
                record.hyperopt.append(result)
                by_fold[task.fold].append(result)
                progress(
                    f"[{done}/{total}] {task.name}: loss {result['loss']:.4g}, "
                    f"{result['seconds']:.0f} s ({elapsed:.0f} s elapsed)"
                )
                if len(by_fold[task.fold]) == len(plan.random_states):
                    best = best_hyperopt(by_fold[task.fold])
                    fold = fold_of[task.fold]
                    executor.submit(
                        BacktestTask(fold.index, "tuned", fold.test_timerange, best["params"])
                    )
            else:
                record.backtests.append(result)
                progress(
                    f"[{done}/{total}] {task.name}: {result['trades']} trades, profit "
                    f"{100 * result['profit_total']:.2f} %, {result['seconds']:.0f} s "
                    f"({elapsed:.0f} s elapsed)"
                )
    finally:
        executor.close()
    return record
