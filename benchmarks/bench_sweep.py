"""Serial vs Ray for one CPU-bound sweep on this machine: speedup and per-task overhead.

    python benchmarks/bench_sweep.py [--cells 16] [--timerange 20240801-20250531] [--workers 2]
        [--boot 1000]   (bootstrap resamples per task: larger makes each task heavier)

The script re-runs itself inside a private, loopback-only network namespace (``unshare -n``,
needs root) so Ray binds and connects on 127.0.0.1 only, then runs the same sweep (``evaluate
magnets`` on the bundled 15m candles, a grid of model windows x horizons, both pairs) twice into
fresh folders: ``--serial`` in this process, and on a local Ray instance with ``--workers`` CPUs.
It checks that the rows are identical (apart from the ``run_*`` columns) and prints one JSON
object:

``serial_s`` / ``ray_s``
    wall time of the whole sweep (Ray: including starting the local instance, ``ray_connect_s``)
``speedup`` / ``speedup_excl_start``
    ``serial_s / ray_s``, and the same without Ray's start-up
``task_s_median`` / ``task_s_sum_*``
    seconds inside the command per task (the ``run_wall_s`` column)
``overhead_per_task_s``
    Ray: ``(workers x ray_run_s - sum of task seconds) / tasks``: CPU-slot time per task not
    spent in the command (scheduling, result transfer, each worker's imports and JIT warm-up,
    idle slots at the end); serial: ``(serial_s - sum of task seconds) / tasks``
``task_cpu_s_*``
    CPU seconds per task (``run_cpu_s``), which a busy machine does not inflate
``load_before``
    the 1-minute load average when the run started (the machine is shared)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WINDOWS = ["1d", "2d", "3d", "1w", "10d", "2w", "3w", "4w"]
HORIZONS = ["4h", "1d"]


def _spec(cells: int, timerange: str, datadir: Path, boot: int = 1000) -> str:
    windows = WINDOWS[: max(1, cells // len(HORIZONS))]
    return (
        "[sweep]\n"
        'command = "evaluate magnets"\n'
        f'datadir = "{datadir}"\n'
        'pairs = ["BTC/USDT:USDT", "ETH/USDT:USDT"]\n'
        'timeframe = "15m"\n'
        f'timerange = "{timerange}"\n'
        f"[options]\nboot = {boot}\nstep = 2\n"
        f"[grid]\nwindow = {json.dumps(windows)}\nhorizon = {json.dumps(HORIZONS)}\n"
    )


def _inside(args: argparse.Namespace) -> dict:
    import pandas as pd

    from liqsignals import sample
    from liqsignals.sweep import RUN_COLUMNS, run_sweep

    load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    spec = work / "spec.toml"
    spec.write_text(_spec(args.cells, args.timerange, sample.datadir(), args.boot))
    t0 = time.perf_counter()
    run_sweep(spec, work / "serial", serial=True, progress=False)
    serial_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray_report = run_sweep(spec, work / "ray", workers=args.workers, progress=False)
    ray_s = time.perf_counter() - t0
    a = pd.read_parquet(work / "serial" / "results.parquet")
    b = pd.read_parquet(work / "ray" / "results.parquet")
    pd.testing.assert_frame_equal(
        a.drop(columns=list(RUN_COLUMNS)), b.drop(columns=list(RUN_COLUMNS))
    )
    n = len(a)
    st = ray_report.stats
    sum_serial, sum_ray = float(a["run_wall_s"].sum()), float(b["run_wall_s"].sum())
    return {
        "tasks": n,
        "workers": args.workers,
        "timerange": args.timerange,
        "boot": args.boot,
        "load_before": round(load, 2),
        "serial_s": round(serial_s, 2),
        "ray_s": round(ray_s, 2),
        "ray_connect_s": round(st.connect_s, 2),
        "ray_run_s": round(st.run_s, 2),
        "speedup": round(serial_s / ray_s, 3),
        "speedup_excl_start": round(serial_s / st.run_s, 3),
        "task_s_median_serial": round(statistics.median(a["run_wall_s"]), 3),
        "task_s_median_ray": round(statistics.median(b["run_wall_s"]), 3),
        "task_s_max_ray": round(float(b["run_wall_s"].max()), 3),
        "task_s_sum_serial": round(sum_serial, 2),
        "task_s_sum_ray": round(sum_ray, 2),
        "overhead_per_task_s_ray": round((args.workers * st.run_s - sum_ray) / n, 3),
        "overhead_per_task_s_serial": round((serial_s - sum_serial) / n, 3),
        "task_cpu_s_sum_serial": round(float(a["run_cpu_s"].sum()), 2),
        "task_cpu_s_sum_ray": round(float(b["run_cpu_s"].sum()), 2),
        "task_cpu_s_median_serial": round(statistics.median(a["run_cpu_s"]), 3),
        "task_cpu_s_median_ray": round(statistics.median(b["run_cpu_s"]), 3),
        "task_cpu_s_max_ray": round(float(b["run_cpu_s"].max()), 3),
        "rows_identical": True,
        "results": str(work),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=16, help="grid cells (x 2 pairs = tasks)")
    ap.add_argument("--timerange", default="20240801-20250531")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--boot", type=int, default=1000, help="bootstrap resamples per task (heavier tasks)"
    )
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        print(json.dumps(_inside(args), indent=1))
        return 0
    inner = [sys.executable, str(Path(__file__).resolve()), "--inside", "--cells",
             str(args.cells), "--timerange", args.timerange, "--workers", str(args.workers),
             "--boot", str(args.boot)]  # fmt: skip
    quoted = " ".join(f"'{a}'" for a in inner)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run(
        ["unshare", "-n", "sh", "-c", f"ip link set lo up && {quoted}"], env=env
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
