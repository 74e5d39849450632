"""Cost of the book read-outs, two checkouts side by side: the figures of ``bench_features.py``
(batch ``liquidation_levels`` and ``liquidation_features`` per candle and their ratio,
``FeatureStream.update`` / ``update_arrays`` per call on 15m-like and 1m candles) for each
checkout, in alternating fresh subprocesses (one run of each figure per subprocess), so both
are measured in the same session.

Run::

    git worktree add ../before <commit before the read-outs changed>
    python benchmarks/compare_readouts.py ../before . --rows 100000 --runs 5

Prints each run and the medians (µs per candle or per call, CPU time of the process: steadier on
a shared machine than wall time; ``wall_*`` the wall clock) and the load average. Nothing is
asserted: speed is measured here, not in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(1, sys.argv[3])
from bench_features import measure
r = measure(int(sys.argv[2]), 1)
print(r["package"], file=sys.stderr)
print(json.dumps({k: v for k, v in r.items() if isinstance(v, float)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path, help="checkout of the earlier commit")
    ap.add_argument("after", type=Path, help="checkout of the later commit")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for run in range(args.runs):
        for name in ("before", "after"):
            tree = getattr(args, name).resolve()
            cmd = [sys.executable, "-c", CHILD, str(tree), str(args.rows), str(HERE)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tree)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if run == 0:
                print(f"{name}: liqsignals from {out.stderr.strip().splitlines()[-1]}")
            results[name].append(r)
            print(f"run {run + 1} {name:6s} " + "  ".join(f"{k} {v:.2f}" for k, v in r.items()))
    print(f"medians of {args.runs} alternating runs; load average {os.getloadavg()}:")
    for name, rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"  {name:6s} " + "  ".join(f"{k} {v:.2f}" for k, v in med.items()))


if __name__ == "__main__":
    main()
