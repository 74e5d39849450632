"""One sweep from spec to results: check everything, skip what is done, run the rest, write."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liqsignals.cli.options import CLIError
from liqsignals.sweep.results import TaskStore, write_outputs
from liqsignals.sweep.runner import Progress, RunStats, check_address, run_ray, run_serial
from liqsignals.sweep.spec import load_spec
from liqsignals.sweep.tasks import Task, TaskOutcome, build_tasks

__all__ = ["SweepReport", "run_sweep"]


@dataclass
class SweepReport:
    """What a sweep did: task counts, the run's timings, where the results are."""

    out: str
    tasks: int
    skipped: int
    ran: int
    errors: int
    stats: RunStats = field(default_factory=RunStats)

    @property
    def failed(self) -> int:
        return len(self.stats.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "tasks": self.tasks,
            "skipped": self.skipped,
            "ran": self.ran,
            "errors": self.errors,
            "failed_in_ray": self.failed,
            "mode": self.stats.mode,
            "connect_s": round(self.stats.connect_s, 3),
            "run_s": round(self.stats.run_s, 3),
            "cpus": self.stats.cpus,
            "nodes": self.stats.nodes,
        }


def run_sweep(
    spec_path: str | Path,
    out: str | Path,
    *,
    serial: bool = False,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> SweepReport:
    """Run the sweep of ``spec_path`` into ``out``; finished tasks in ``out`` are skipped.

    Every input problem (spec, command, grid keys, data, a Ray address nothing listens at) is a
    :class:`CLIError` raised before any task runs.
    """
    if serial and address is not None:
        raise CLIError("--serial runs in this process; it takes no --address")
    if workers is not None and workers < 1:
        raise CLIError("--workers must be at least 1")
    spec = load_spec(spec_path)
    tasks = build_tasks(spec)
    store = TaskStore(out)
    records = store.check(tasks)
    if not serial:
        check_address(address)
    pending = [t for t in tasks if t.key not in records]
    bar = Progress(len(tasks), len(tasks) - len(pending), "sweep") if progress else None

    def done(task: Task, outcome: TaskOutcome) -> None:
        records[task.key] = store.write(task, outcome)
        if bar is not None:
            bar.update(task.pair)

    try:
        if not pending:
            stats = RunStats("serial" if serial else "ray")
        elif serial:
            stats = run_serial(pending, done)
        else:
            stats = run_ray(pending, done, address=address, workers=workers)
    finally:
        if bar is not None:
            bar.close()
        write_outputs(out, spec, tasks, records)
    ran = len(pending) - len(stats.failed)
    total_errors = sum(1 for r in records.values() if r.get("error") is not None)
    return SweepReport(str(out), len(tasks), len(tasks) - len(pending), ran, total_errors, stats)
