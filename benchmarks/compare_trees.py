"""Engine speed of two checkouts side by side: batch ``liquidation_levels`` and
``LiquidationEngine.update`` on the same synthetic 1m candles, in alternating fresh subprocesses.

Run::

    git worktree add /tmp/before <commit>
    python benchmarks/compare_trees.py /tmp/before . --rows 200000 --runs 3

Prints each run and the medians (µs per candle in batch, µs per ``update()`` call), in wall time
and in the process's CPU time (steadier on a shared machine: time spent waiting for a core is
left out). Nothing is asserted: speed is measured here, not in the tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[3])
from bench_engine import synthetic_1m
from liqsignals.engine import LiquidationEngine, liquidation_levels
from liqsignals.model import LiquidationModel
n = int(sys.argv[2])
df = synthetic_1m(n)
m = LiquidationModel(window="1w")
liquidation_levels(df.iloc[:20000], m)  # compile
t, c = time.perf_counter(), time.process_time()
liquidation_levels(df, m)
batch, batch_cpu = time.perf_counter() - t, time.process_time() - c
eng = LiquidationEngine(m)
eng.update_many(df.iloc[: n - 5000])
rows = df.iloc[n - 5000 :].to_dict("records")
t, c = time.perf_counter(), time.process_time()
for r in rows:
    eng.update(r)
inc = (time.perf_counter() - t) / len(rows)
inc_cpu = (time.process_time() - c) / len(rows)
print(json.dumps({"batch_us": batch / n * 1e6, "update_us": inc * 1e6,
                  "batch_cpu_us": batch_cpu / n * 1e6, "update_cpu_us": inc_cpu * 1e6}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("before", type=Path, help="checkout of the earlier commit")
    ap.add_argument("after", type=Path, help="checkout of the later commit")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    res: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    for _ in range(args.runs):
        for name, path in trees.items():
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), str(args.rows), str(HERE)],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            res[name].append(row)
            print(name, {k: round(v, 3) for k, v in row.items()}, flush=True)
    for name, rows in res.items():
        b = statistics.median(r["batch_us"] for r in rows)
        u = statistics.median(r["update_us"] for r in rows)
        bc = statistics.median(r["batch_cpu_us"] for r in rows)
        uc = statistics.median(r["update_cpu_us"] for r in rows)
        print(
            f"{name}: median batch {b:.3f} µs/candle, median update {u:.2f} µs "
            f"(CPU time: batch {bc:.3f}, update {uc:.2f})"
        )


if __name__ == "__main__":
    main()
