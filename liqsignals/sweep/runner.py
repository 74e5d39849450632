"""Run a sweep's tasks: in this process (``--serial``) or as Ray tasks.

Ray, by default, is a local instance started for the sweep (``ray.init()`` with no address; one
worker per CPU, or ``--workers N``); with ``--address`` the sweep joins a running cluster
(``auto``: the one ``ray start`` started on this machine; ``HOST:PORT``: the head's GCS
address). Each task is one Ray task needing one CPU, retried up to :data:`MAX_RETRIES` times
when its worker or node dies (Ray's ``max_retries``), so a lost node costs the tasks that were
running there, not the sweep. Tasks carry only their argument list (a few hundred bytes) and
return the command's JSON; the data is read by the workers from the spec's ``datadir``, an
absolute path (a shared path on a cluster), so nothing depends on a worker's working directory.

The driver keeps at most ``2 x CPUs`` tasks in flight and records each result the moment it
arrives (:class:`liqsignals.sweep.results.TaskStore`), so an interrupted sweep resumes where it
stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from liqsignals.cli.options import CLIError
from liqsignals.sweep.tasks import Task, TaskOutcome, run_argv

__all__ = [
    "LOCAL_OBJECT_STORE_BYTES",
    "MAX_RETRIES",
    "RunStats",
    "check_address",
    "connect",
    "ray_task",
    "run_ray",
    "run_serial",
]

#: Ray's retries of a task whose worker or node died
MAX_RETRIES = 3
#: object store of the local instance: results are small JSON objects
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024

OnDone = Callable[[Task, TaskOutcome], None]


@dataclass
class RunStats:
    """How a run went: seconds to start or join Ray, seconds running tasks, the tasks that
    failed in Ray itself (lost beyond the retries; not recorded, so a rerun runs them)."""

    mode: str = "serial"
    connect_s: float = 0.0
    run_s: float = 0.0
    cpus: float = 1.0
    nodes: int = 1
    failed: list[tuple[Task, str]] = field(default_factory=list)


def run_serial(tasks: Sequence[Task], on_done: OnDone) -> RunStats:
    """Run ``tasks`` one after the other in this process."""
    start = time.perf_counter()
    for task in tasks:
        on_done(task, run_argv(task.argv))
    return RunStats("serial", run_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- Ray
def check_address(address: str | None) -> None:
    """A :class:`CLIError` when ``HOST:PORT`` is malformed or nothing accepts a connection
    there (checked before Ray is asked, which would otherwise wait for a minute)."""
    if address is None or address == "auto":
        return
    text = address.split("://", 1)[-1]
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise CLIError(f"--address {address!r}: expected HOST:PORT (e.g. 127.0.0.1:6379) or auto")
    host = host.strip("[]") or "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CLIError(
            f"--address {address}: nothing listens at {host}:{port} ({reason}); start a head "
            f"there with `ray start --head --port {port}`, or use --address auto to join the "
            "cluster `ray start` started on this machine"
        ) from None


def connect(address: str | None, workers: int | None) -> Any:
    """``ray.init`` for the sweep; the ``ray`` module. A failure to join is a CLIError."""
    from liqsignals.extras import require

    check_address(address)
    try:
        ray = require("ray", "sweeps on Ray (or run with --serial)")
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        kwargs.update(
            num_cpus=workers or os.cpu_count() or 1,
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        )
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "start a local Ray instance" if address is None else f"join {address}"
        raise CLIError(f"could not {where}: {first}") from None
    return ray


def ray_task(argv: list[str]) -> dict[str, Any]:
    """The body of one Ray task: :func:`run_argv` plus the id of the node it ran on."""
    import ray

    outcome = run_argv(argv)
    outcome.node = ray.get_runtime_context().get_node_id()
    return outcome.to_dict()


def run_ray(
    tasks: Sequence[Task],
    on_done: OnDone,
    *,
    address: str | None = None,
    workers: int | None = None,
) -> RunStats:
    """Run ``tasks`` as Ray tasks (local instance, or the cluster at ``address``).

    What Ray itself prints while the sweep runs (node-death notices, for example) goes to
    stderr: stdout stays for the sweep's own output (``--json``).
    """
    with contextlib.redirect_stdout(sys.stderr):
        return _run_ray(tasks, on_done, address, workers)


def _run_ray(
    tasks: Sequence[Task], on_done: OnDone, address: str | None, workers: int | None
) -> RunStats:
    t0 = time.perf_counter()
    ray = connect(address, workers)
    try:
        stats = RunStats("ray", connect_s=time.perf_counter() - t0)
        resources = ray.cluster_resources()
        stats.cpus = float(resources.get("CPU", 1.0))
        stats.nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        cap = max(1, int(workers or 0) or int(2 * stats.cpus))
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(ray_task)
        start = time.perf_counter()
        queue = deque(tasks)
        flight: dict[Any, Task] = {}
        while queue or flight:
            while queue and len(flight) < cap:
                task = queue.popleft()
                flight[remote.remote(list(task.argv))] = task
            ready, _ = ray.wait(list(flight), num_returns=1)
            for ref in ready:
                task = flight.pop(ref)
                try:
                    got = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    stats.failed.append((task, f"{type(exc).__name__}: {first}"))
                    continue
                on_done(task, TaskOutcome(**got))
        stats.run_s = time.perf_counter() - start
        return stats
    finally:
        ray.shutdown()


# ----------------------------------------------------------------------------- progress
class Progress:
    """A progress bar on stderr (tqdm when installed, else a line per task)."""

    def __init__(self, total: int, done: int, desc: str) -> None:
        self.total, self.count, self.desc = total, done, desc
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm comes with the data and plot extras
            self.bar = None
        else:
            self.bar = tqdm(total=total, initial=done, desc=desc, unit="task", file=sys.stderr)

    def update(self, label: str = "") -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)
        else:  # pragma: no cover
            print(f"{self.desc}: {self.count}/{self.total} {label}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
