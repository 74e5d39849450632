"""Cost of the book read-outs, two checkouts side by side: batch ``liquidation_levels``, batch
``liquidation_features`` and ``FeatureStream.update`` per candle, on the same synthetic 1m
candles, in alternating fresh subprocesses (so both are measured in the same run).

Run::

    git worktree add ../before <commit before the read-outs changed>
    python benchmarks/compare_readouts.py ../before . --rows 100000 --runs 3

Prints each run and the medians in µs per candle, in CPU time of the process (steadier on a
shared machine than wall time). Nothing is asserted: speed is measured here, not in the tests.
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
from liqsignals.engine import liquidation_levels
from liqsignals.features import FeatureStream, liquidation_features
from liqsignals.model import LiquidationModel
n, n_inc = int(sys.argv[2]), int(sys.argv[4])
df = synthetic_1m(n)
m = LiquidationModel(window="1w")
liquidation_features(df.iloc[:20000], m)  # compile
c = time.process_time()
liquidation_levels(df, m)
levels = time.process_time() - c
c = time.process_time()
feats = liquidation_features(df, m)
features = time.process_time() - c
stream = FeatureStream(m)
stream.update_many(df.iloc[: n - n_inc])
rows = df.iloc[n - n_inc :].to_dict("records")
c = time.process_time()
for r in rows:
    stream.update(r)
upd = time.process_time() - c
print(json.dumps({"levels_us": levels / n * 1e6, "features_us": features / n * 1e6,
                  "update_us": upd / n_inc * 1e6, "columns": feats.shape[1]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path, help="checkout of the earlier commit")
    ap.add_argument("after", type=Path, help="checkout of the later commit")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--stream-rows", type=int, default=5_000, help="candles through update()")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for run in range(args.runs):
        for name in ("before", "after"):
            tree = getattr(args, name).resolve()
            cmd = [sys.executable, "-c", CHILD, str(tree), str(args.rows), str(HERE),
                   str(args.stream_rows)]  # fmt: skip
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tree)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results[name].append(r)
            print(f"run {run + 1} {name:6s} " + "  ".join(f"{k} {v:.2f}" for k, v in r.items()))
    print("medians, µs per candle (CPU time):")
    for name, rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"  {name:6s} " + "  ".join(f"{k} {v:.2f}" for k, v in med.items()))


if __name__ == "__main__":
    main()
