"""Benchmark: a liquidation heatmap over one year of 15m candles, computed and drawn to PNG.

Uses the bundled BTC/USDT:USDT 15m candles (2024-06-01 .. 2025-05-31, 35,040 candles) with the
settings of ``liqsignals heatmap``: at most 2,000 columns and 500 price rows, a 1w window, drawn
with the display smoothing along price to PNG and to HTML (the same cells). Prints the seconds of
each stage and the total (target: under 30 s).

    python benchmarks/bench_heatmap.py [--repeat 3] [--keep heatmap.png]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

TARGET_S = 30.0


def run(out: Path) -> dict[str, float]:
    """One cold-ish run; returns seconds per stage."""
    t0 = time.perf_counter()
    from liqsignals import sample
    from liqsignals.heatmap import liquidation_heatmap

    df = sample.load_candles("BTC/USDT:USDT", "15m")
    t1 = time.perf_counter()
    hm = liquidation_heatmap(df, window="1w", max_times=2000, max_bins=500)
    hm.meta.update(pair="BTC/USDT:USDT", timeframe="15m", exchange="binance")
    t2 = time.perf_counter()
    from liqsignals.plotting import save_heatmap

    save_heatmap(hm, out)
    t3 = time.perf_counter()
    save_heatmap(hm, out.with_suffix(".html"), plotlyjs="cdn")
    t4 = time.perf_counter()
    return {
        "candles": float(len(df)),
        "columns": float(hm.shape[0]),
        "rows": float(hm.shape[1]),
        "load": t1 - t0,
        "compute": t2 - t1,
        "render": t3 - t2,
        "html": t4 - t3,
        "total": t4 - t0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs (the first includes imports)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the PNG at this path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "heatmap.png"
        results = [run(out) for _ in range(max(1, args.repeat))]
    first = results[0]
    print(
        f"heatmap, BTC/USDT:USDT 15m, {first['candles']:.0f} candles -> "
        f"{first['columns']:.0f} columns x {first['rows']:.0f} rows, PNG 1600x900 and HTML"
    )
    for i, r in enumerate(results, start=1):
        print(
            f"run {i}: load {r['load']:.2f} s, compute {r['compute']:.2f} s, "
            f"render {r['render']:.2f} s, html {r['html']:.2f} s, total {r['total']:.2f} s"
        )
    best = min(r["total"] for r in results)
    status = "ok" if first["total"] < TARGET_S else "SLOW"
    print(
        f"first run {first['total']:.2f} s, best {best:.2f} s (target < {TARGET_S:.0f} s): {status}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
