"""Where a sweep keeps its results: one record per finished task, ``results.parquet`` and
``summary.md``.

``DIR/tasks/KEY.json``
    One file per finished task (written atomically when the task finishes): the task's place,
    pair, grid values, arguments, the command's JSON or its error, and where and how long it ran.
    A rerun reads these and skips the tasks they name (resume); writing a task twice gives the
    same file apart from the run fields, so a retried task cannot appear twice.
``DIR/results.parquet``
    One row per finished task, in task order: ``task`` (the key), ``index``, ``cell``, ``pair``,
    ``param_<option>`` for each grid key, ``error`` (empty when the command succeeded), every key
    of the command's ``--json`` (nested objects as ``a.b``, lists as JSON text), and the run
    fields ``run_wall_s`` (seconds in the command), ``run_cpu_s`` (CPU seconds of the process
    meanwhile) and ``run_node`` (Ray node id, ``local`` for
    ``--serial``), which are the only columns that differ between runs.
``DIR/summary.md``
    The grid, a table per task, a table per grid key (the mean over the other keys) and a
    Holm-corrected view of the family of tests the sweep ran (:func:`holm_view`).
``DIR/spec.toml``
    The spec the results came from.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liqsignals.cli.options import CLIError
from liqsignals.fileio import atomic_path, atomic_write_text
from liqsignals.sweep.spec import SweepSpec
from liqsignals.sweep.tasks import Task, TaskOutcome, flatten

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "RUN_COLUMNS",
    "TaskStore",
    "holm_view",
    "results_frame",
    "summary_markdown",
    "write_outputs",
]

#: the columns that describe the run, not the result (they differ between runs)
RUN_COLUMNS = ("run_wall_s", "run_cpu_s", "run_node")
_Z95 = 1.959963984540054


class TaskStore:
    """The per-task records under ``DIR/tasks``."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.folder = self.out / "tasks"

    def path(self, task: Task) -> Path:
        return self.folder / f"{task.key}.json"

    def load(self) -> dict[str, dict[str, Any]]:
        """Every readable record, by task key."""
        found: dict[str, dict[str, Any]] = {}
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue  # unreadable: the task runs again
            if isinstance(record, dict) and record.get("task") == path.stem:
                found[path.stem] = record
        return found

    def check(self, tasks: Sequence[Task]) -> dict[str, dict[str, Any]]:
        """The records of ``tasks`` already finished; a :class:`CLIError` when ``DIR`` holds
        records of tasks this spec does not have (another sweep's results)."""
        if self.out.exists() and not self.out.is_dir():
            raise CLIError(f"--out {self.out} is a file, not a folder")
        done = self.load()
        keys = {t.key for t in tasks}
        foreign = sorted(set(done) - keys)
        if foreign:
            raise CLIError(
                f"--out {self.out} holds {len(foreign)} result(s) of tasks this spec does not "
                "have (another sweep, or a changed spec); use another --out folder"
            )
        return done

    def write(self, task: Task, outcome: TaskOutcome) -> dict[str, Any]:
        record = {
            "task": task.key,
            "index": task.index,
            "cell": task.cell,
            "pair": task.pair,
            "params": task.params,
            "argv": list(task.argv),
            **outcome.to_dict(),
        }
        atomic_write_text(self.path(task), json.dumps(record, allow_nan=False))
        return record


def _uniform(values: list[Any]) -> list[Any]:
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) > 1 and not kinds <= {int, float}:
        return [None if v is None else str(v) for v in values]
    return values


def results_frame(tasks: Sequence[Task], records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per finished task, in task order (the columns of ``results.parquet``)."""
    import pandas as pd

    rows = []
    grid_keys = list(tasks[0].params) if tasks else []
    for task in tasks:
        rec = records.get(task.key)
        if rec is None:
            continue
        row: dict[str, Any] = {"task": task.key, "index": task.index, "cell": task.cell}
        row["pair"] = task.pair
        for k in grid_keys:
            row[f"param_{k}"] = task.params[k]
        row["error"] = rec.get("error")
        if rec.get("result") is not None:
            for k, v in flatten(rec["result"]).items():
                row[f"result.{k}" if k in row else k] = v
        row["run_wall_s"] = float(rec.get("wall_s") or 0.0)
        row["run_cpu_s"] = float(rec.get("cpu_s") or 0.0)
        row["run_node"] = str(rec.get("node") or "")
        rows.append(row)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns and c not in RUN_COLUMNS]
    columns += list(RUN_COLUMNS)
    data = {c: _uniform([row.get(c) for row in rows]) for c in columns}
    frame = pd.DataFrame(data, columns=columns)
    if "error" in frame:
        frame["error"] = frame["error"].astype("string")
    return frame


# ----------------------------------------------------------------------------- Holm view
def _null_of(name: str) -> float:
    return 1.0 if ("lift" in name or "ratio" in name) else 0.0


def _approx_p(est: float, low: float, high: float, null: float) -> float:
    """Two-sided p of ``est != null`` from its 95 % interval (normal approximation, on the log
    scale for ratios)."""
    if null == 1.0:
        if min(est, low, high) <= 0:
            return math.nan
        est, low, high, null = math.log(est), math.log(low), math.log(high), 0.0
    se = (high - low) / (2 * _Z95)
    if not se > 0:
        return math.nan
    return math.erfc(abs(est - null) / se / math.sqrt(2))


def _tests(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(metric, p source, kind): ``*p_value`` columns, else ``X`` with ``X_ci_low/high``."""
    numeric = [c for c in frame.columns if c not in RUN_COLUMNS]
    exact = [(c, c, "exact") for c in numeric if c.endswith("p_value")]
    if exact:
        return exact
    return [
        (c[: -len("_ci_low")], c, "interval")
        for c in numeric
        if c.endswith("_ci_low")
        and c[: -len("_ci_low")] in frame
        and c[: -len("_ci_low")] + "_ci_high" in frame
    ]


def holm_view(frame: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, str]:
    """Every test the sweep ran, Holm-adjusted as one family (all tasks, all tested metrics).

    p-values are the command's own ``*p_value`` keys when it prints any; otherwise, for each key
    ``X`` printed with ``X_ci_low`` and ``X_ci_high`` (95 % block-bootstrap intervals), the
    two-sided p of ``X`` against its null (1 for a lift or ratio, else 0) from a normal
    approximation of the interval (log scale for ratios), which the note says. Returns the table
    (sorted by p) and that note.
    """
    import numpy as np
    import pandas as pd

    from liqsignals.analysis.intervals import holm

    ok = frame[frame["error"].isna()] if "error" in frame else frame
    tests = _tests(ok)
    rows = []
    params = [c for c in ok.columns if c.startswith("param_")]
    for metric, source, kind in tests:
        for _, r in ok.iterrows():
            base = {"pair": r["pair"], **{c[6:]: r[c] for c in params}, "metric": metric}
            if kind == "exact":
                p = float(r[source]) if pd.notna(r[source]) else math.nan
                base["estimate"] = r.get(metric[: -len("_p_value")], math.nan)
            else:
                est, lo, hi = (r[metric], r[f"{metric}_ci_low"], r[f"{metric}_ci_high"])
                vals = [float(x) if pd.notna(x) else math.nan for x in (est, lo, hi)]
                p = _approx_p(vals[0], vals[1], vals[2], _null_of(metric))
                base.update(estimate=vals[0], ci_low=vals[1], ci_high=vals[2])
            base["p"] = p
            rows.append(base)
    view = pd.DataFrame(rows)
    if view.empty:
        return view, "no test in the command's output (no *p_value or *_ci_low/*_ci_high keys)"
    finite = np.isfinite(view["p"].to_numpy(dtype=float))
    view["p_holm"] = np.nan
    view.loc[finite, "p_holm"] = holm(view.loc[finite, "p"].to_numpy(dtype=float))
    view[f"reject_at_{alpha:g}"] = view["p_holm"] < alpha
    view = view.sort_values(["p", "metric"], kind="stable", na_position="last")
    kinds = {k for _, _, k in tests}
    note = (
        f"{int(finite.sum())} tests in one family (every task x {len(tests)} metric(s)); Holm's "
        f"step-down adjustment, family-wise error {alpha:g}. "
        + (
            "p-values are the command's own."
            if kinds == {"exact"}
            else "p-values are approximations from each 95% interval (normal on the log scale "
            "for lifts and ratios, null 1; otherwise null 0), not exact bootstrap p-values."
        )
    )
    return view.reset_index(drop=True), note


# ----------------------------------------------------------------------------- markdown
def _fmt(v: Any) -> str:
    import pandas as pd

    if not isinstance(v, list | dict) and pd.isna(v):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    text = str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _table(frame: pd.DataFrame, columns: Iterable[str]) -> str:
    cols = [c for c in columns if c in frame.columns]
    if not cols or frame.empty:
        return "(none)\n"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c]).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _metrics(frame: pd.DataFrame) -> list[str]:
    """Numeric result columns that vary across tasks (at most 8 for the tables)."""
    import pandas as pd

    skip = {"index", "cell", *RUN_COLUMNS}
    out = []
    for c in frame.columns:
        if c in skip or c.startswith("param_") or c in ("task", "pair", "error"):
            continue
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            if col.nunique(dropna=True) > 1:
                out.append(c)
    return out[:8]


def summary_markdown(spec: SweepSpec, tasks: Sequence[Task], frame: pd.DataFrame) -> str:
    """The text of ``summary.md``."""
    n_err = int(frame["error"].notna().sum()) if "error" in frame else 0
    params = [c for c in frame.columns if c.startswith("param_")]
    metrics = _metrics(frame[frame["error"].isna()] if "error" in frame else frame)
    parts = [
        f"# Sweep: `liqsignals {spec.command.name}`\n",
        f"- tasks: {len(tasks)} ({len(spec.cells())} grid cell(s) x {len(spec.pairs)} pair(s)); "
        f"finished {len(frame)}, with an error {n_err}",
        f"- data: `{spec.datadir}`, timeframe {spec.timeframe or 'from the grid'}, "
        f"timerange {spec.timerange or 'all'}",
        f"- pairs: {', '.join(spec.pairs)}",
        "- fixed options: " + (", ".join(f"--{k} {v}" for k, v in spec.options.items()) or "none"),
        "- grid: " + ("; ".join(f"{k} = {v}" for k, v in spec.grid.items()) or "none"),
        "- rows: `results.parquet` (one per task; `run_*` columns are the only ones that "
        "differ between runs)\n",
        "## Tasks\n",
        _table(frame, ["pair", *params, *metrics, "error"]),
    ]
    ok = frame[frame["error"].isna()] if "error" in frame else frame
    if params and metrics and not ok.empty:
        parts.append("## By grid value (mean over the other grid keys and the pairs)\n")
        for p in params:
            means = ok.groupby(p, sort=False)[metrics].mean().reset_index()
            parts += [f"### {p[6:]}\n", _table(means, [p, *metrics])]
    view, note = holm_view(frame)
    parts += ["## Holm-corrected view\n", note + "\n"]
    if not view.empty:
        show = [c for c in view.columns if c not in ()]
        parts.append(_table(view, show))
    return "\n".join(parts)


def write_outputs(
    out: str | Path,
    spec: SweepSpec,
    tasks: Sequence[Task],
    records: Mapping[str, Mapping[str, Any]],
) -> pd.DataFrame:
    """Write ``results.parquet``, ``summary.md`` and ``spec.toml`` (atomically); the frame."""
    folder = Path(out)
    frame = results_frame(tasks, records)
    with atomic_path(folder / "results.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    atomic_write_text(folder / "summary.md", summary_markdown(spec, tasks, frame))
    if spec.source:
        atomic_write_text(folder / "spec.toml", spec.source)
    return frame
