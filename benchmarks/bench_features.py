"""Cost of the ``liq_*`` features over the engine's own batch time, and of ``FeatureStream``.

Run: ``python benchmarks/bench_features.py`` (``make bench`` runs every benchmark).

On the same 100,000 seeded synthetic 1m candles (``synthetic_1m`` of ``bench_engine.py``,
default model, 1w window), five alternating runs of ``liquidation_levels`` (the engine's batch
output) and ``liquidation_features`` (every ``liq_*`` column), medians in µs per candle, their
ratio (target: at most 1.3x) and the median of the runs' differences. Then
``FeatureStream.update`` (a dict per candle, the live bot's path) and
``FeatureStream.update_arrays`` with one candle, in µs per call: on a 15m-like
frame (1,700 candles of history, then 1,000 new candles) and on the 1m candles (95,000 of
history, then 5,000 new ones), five alternating runs, medians.

Times are CPU time of the process (``process_time``, steadier on a shared machine than wall
time; the wall-clock medians are printed beside them). Nothing is asserted: speed is measured
here, not in the tests. ``--json`` prints the figures as one JSON object; ``--rows`` and
``--runs`` change the sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import synthetic_1m


def _timed(fn: Any) -> tuple[float, float]:
    """CPU (``process_time``) and wall (``perf_counter``) seconds of ``fn()``."""
    c, t = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c, time.perf_counter() - t


def _stream_case(df: pd.DataFrame, history: int, model: Any) -> dict[str, Any]:
    """A stream with ``history`` candles through ``update_many``, the rest as dicts (for
    ``update``) and as one-candle arrays (for ``update_arrays``)."""
    tail = df.iloc[history:]
    dates = tail["date"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    cols = ("open", "high", "low", "close", "volume")
    arrays = [
        (dates[i : i + 1], {c: tail[c].to_numpy()[i : i + 1] for c in cols})
        for i in range(len(tail))
    ]
    return {"df": df, "history": history, "model": model,
            "records": tail.to_dict("records"), "arrays": arrays}  # fmt: skip


def _time_stream(case: dict[str, Any], how: str) -> tuple[float, float]:
    from liqsignals.features import FeatureStream

    stream = FeatureStream(case["model"])
    stream.update_many(case["df"].iloc[: case["history"]])
    if how == "update":
        items = case["records"]

        def go() -> None:
            update = stream.update
            for r in items:
                update(r)
    else:
        items = case["arrays"]

        def go() -> None:
            update = stream.update_arrays
            for d, v in items:
                update(d, v)

    cpu, wall = _timed(go)
    return cpu / len(items) * 1e6, wall / len(items) * 1e6


def measure(rows: int = 100_000, runs: int = 5) -> dict[str, Any]:
    """The figures of the module docstring (medians of ``runs`` alternating runs)."""
    import liqsignals
    from liqsignals import LiquidationModel, liquidation_features, liquidation_levels

    df = synthetic_1m(rows)
    model = LiquidationModel(window="1w")
    liquidation_levels(df.iloc[:20_000], model)  # compile / load the numba caches
    liquidation_features(df.iloc[:20_000], model)
    hist_1m = max(rows - 5_000, rows // 2)
    cases = {
        "15m": _stream_case(synthetic_1m(2_700, seed=15, minutes=15), 1_700, model),
        "1m": _stream_case(df, hist_1m, model),
    }
    _time_stream(_stream_case(df.iloc[:12_000], 11_000, model), "update")  # warm the paths
    _time_stream(_stream_case(df.iloc[:12_000], 11_900, model), "arrays")
    cpu: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}

    def add(name: str, c: float, w: float) -> None:
        cpu.setdefault(name, []).append(c)
        wall.setdefault(name, []).append(w)

    for _ in range(runs):
        c, w = _timed(lambda: liquidation_levels(df, model))
        add("levels_us", c / rows * 1e6, w / rows * 1e6)
        c, w = _timed(lambda: liquidation_features(df, model))
        add("features_us", c / rows * 1e6, w / rows * 1e6)
        for tf, case in cases.items():
            add(f"update_{tf}_us", *_time_stream(case, "update"))
            add(f"update_arrays_{tf}_us", *_time_stream(case, "arrays"))
    for d in (cpu, wall):  # what the features add to the engine's batch, run by run
        d["extra_us"] = [f - lv for f, lv in zip(d["features_us"], d["levels_us"], strict=True)]
    out: dict[str, Any] = {k: statistics.median(v) for k, v in cpu.items()}
    out.update({f"wall_{k}": statistics.median(v) for k, v in wall.items()})
    out["ratio"] = out["features_us"] / out["levels_us"]
    out["wall_ratio"] = out["wall_features_us"] / out["wall_levels_us"]
    out.update(rows=rows, runs=runs, columns=int(liquidation_features(df.iloc[:2_000]).shape[1]))
    out["new_15m"], out["new_1m"] = len(cases["15m"]["records"]), len(cases["1m"]["records"])
    out["package"] = os.path.dirname(liqsignals.__file__)
    out["loadavg"] = os.getloadavg()
    return out


def report(r: dict[str, Any]) -> str:
    def both(key: str) -> str:
        return f"{r[key]:8.2f} (wall {r['wall_' + key]:8.2f})"

    return "\n".join(
        [
            f"features vs engine, {r['rows']:,} seeded synthetic 1m candles, default model, 1w "
            f"window, median of {r['runs']} alternating runs, CPU µs (wall µs); "
            f"load average {r['loadavg'][0]:.2f}",
            f"  liquidation_levels     µs/candle {both('levels_us')}",
            f"  liquidation_features   µs/candle {both('features_us')}   ({r['columns']} columns)",
            f"  features - levels      µs/candle {both('extra_us')}   (median of the runs' "
            "differences)",
            f"  features / levels      {r['ratio']:.3f} (wall {r['wall_ratio']:.3f})   "
            "target <= 1.3",
            f"  FeatureStream.update         µs/call, 15m ({r['new_15m']:,} new after 1,700)  "
            f"{both('update_15m_us')}",
            f"  FeatureStream.update_arrays  µs/call, 15m                          "
            f"{both('update_arrays_15m_us')}",
            f"  FeatureStream.update         µs/call, 1m ({r['new_1m']:,} new)               "
            f"{both('update_1m_us')}",
            f"  FeatureStream.update_arrays  µs/call, 1m                           "
            f"{both('update_arrays_1m_us')}",
            f"  (liqsignals from {r['package']})",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    r = measure(args.rows, args.runs)
    print(json.dumps(r) if args.json else report(r))


if __name__ == "__main__":
    main()
