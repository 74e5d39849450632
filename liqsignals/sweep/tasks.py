"""The task list of a sweep and the one function that runs a task.

A task is one (grid cell, pair): the argument list of the command for that pair with that cell's
options, ``--json`` at the end. :func:`run_argv` runs it in the current process through
:func:`liqsignals.cli.main` with stdout and stderr captured, and returns the parsed JSON (or the
command's error message). The serial runner and the Ray workers call the same function, so the
rows do not depend on where a task ran.

A task's ``key`` is a hash of its command and arguments: the same spec gives the same keys on any
machine that names the data by the same path, which is what resume relies on.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from liqsignals.cli.options import CLIError
from liqsignals.sweep.spec import Scalar, SweepSpec

__all__ = ["Task", "TaskOutcome", "build_tasks", "flatten", "option_words", "run_argv"]


@dataclass(frozen=True)
class Task:
    """One (grid cell, pair): ``index`` is its place in the sweep (cells in grid order, pairs in
    spec order within a cell), ``params`` the cell's grid values."""

    index: int
    cell: int
    pair: str
    params: dict[str, Scalar]
    argv: tuple[str, ...]
    key: str = field(default="")


@dataclass
class TaskOutcome:
    """What running a task gave: the command's JSON, or its error; where and how long."""

    result: Any = None
    error: str | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    node: str = "local"
    pid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "error": self.error,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "node": self.node,
            "pid": self.pid,
        }


def option_words(name: str, value: Any) -> list[str]:
    """``--name value``; a flag for ``True``, nothing for ``False``, several words for a list."""
    if value is True:
        return [f"--{name}"]
    if value is False:
        return []
    if isinstance(value, list):
        return [f"--{name}", *(str(v) for v in value)]
    return [f"--{name}", str(value)]


def _argv(spec: SweepSpec, cell: dict[str, Scalar], pair: str) -> list[str]:
    argv = [*spec.command.words, "--datadir", str(spec.datadir), "--pairs", pair]
    merged: dict[str, Any] = {}
    if spec.timeframe is not None:
        merged["timeframe"] = spec.timeframe
    if spec.timerange is not None:
        merged["timerange"] = spec.timerange
    merged.update(spec.options)
    merged.update(cell)
    for name, value in merged.items():
        argv += option_words(name, value)
    return [*argv, "--json"]


def _task_key(argv: list[str]) -> str:
    return hashlib.sha256(json.dumps(argv).encode()).hexdigest()[:16]


def _check_parses(argv: list[str], label: str) -> None:
    """The command's own parser accepts ``argv`` (without running it)."""
    from liqsignals.cli import build_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args, extra = build_parser().parse_known_args(argv)
        except SystemExit:
            lines = [ln for ln in err.getvalue().strip().splitlines() if ln.strip()]
            message = lines[-1] if lines else "invalid arguments"
            raise CLIError(f"{label}: {message}") from None
    if extra and not isinstance(getattr(args, "passthrough", None), list):
        raise CLIError(f"{label}: unrecognized arguments: {' '.join(extra)}")


def build_tasks(spec: SweepSpec) -> list[Task]:
    """Every (cell, pair) of ``spec``, each argument list checked by the command's parser."""
    tasks: list[Task] = []
    for c, cell in enumerate(spec.cells()):
        for pair in spec.pairs:
            argv = _argv(spec, cell, pair)
            shown = ", ".join(f"{k}={v!r}" for k, v in cell.items()) or "no grid"
            _check_parses(argv, f"task ({shown}; {pair})")
            tasks.append(Task(len(tasks), c, pair, dict(cell), tuple(argv), _task_key(argv)))
    return tasks


def _last_error(stderr: str, code: int) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    tail = " | ".join(lines[-3:]) if lines else "no message"
    return f"exit status {code}: {tail}"


def run_argv(argv: list[str] | tuple[str, ...]) -> TaskOutcome:
    """Run ``liqsignals ARGV`` in this process; the parsed ``--json`` output or the error.

    A command that exits with an error, prints something other than one JSON value, or raises
    gives an outcome with ``error`` set (the sweep records it); Ctrl-C propagates.
    """
    from liqsignals.cli import main

    out, err = io.StringIO(), io.StringIO()
    start, cpu = time.perf_counter(), time.process_time()
    code: int = 0
    crash: str | None = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = int(main(list(argv)) or 0)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception as exc:  # a bug in one task must not lose the others' results
            crash = f"{type(exc).__name__}: {exc}"
    outcome = TaskOutcome(
        wall_s=time.perf_counter() - start, cpu_s=time.process_time() - cpu, pid=os.getpid()
    )
    if crash is not None:
        outcome.error = crash
    elif code != 0:
        outcome.error = _last_error(err.getvalue(), code)
    else:
        try:
            outcome.result = json.loads(out.getvalue())
        except json.JSONDecodeError:
            outcome.error = "the command did not print one JSON value on stdout"
    return outcome


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A JSON value as one row: nested objects become ``a.b`` keys, lists JSON text, a value that
    is not an object the key ``value``."""
    if not isinstance(value, dict):
        if not prefix:
            return flatten({"value": value})
        return {prefix: json.dumps(value) if isinstance(value, list) else value}
    row: dict[str, Any] = {}
    for k, v in value.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            row.update(flatten(v, name))
        else:
            row[name] = json.dumps(v) if isinstance(v, list) else v
    return row
