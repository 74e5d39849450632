"""Engine and feature speed, incremental cost, memory, and published peers on the same data.

Run: ``python benchmarks/bench_engine.py`` (``make bench`` runs every benchmark). Targets:

* one year of 1m candles (525,600 rows, synthetic) with default settings and the 1w window in
  under 1.0 s on one core;
* the incremental engine under 20 microseconds per candle;
* all features in under 2x the engine's own time;
* peak memory independent of history length apart from the output columns.

Figures are printed; nothing is asserted (speed is measured here, not in the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

N_YEAR_1M = 525_600


def synthetic_1m(n: int, seed: int = 42) -> pd.DataFrame:
    """Random-walk 1m candles around 60,000 with BTC-like volatility and volume."""
    rng = np.random.default_rng(seed)
    ret = rng.standard_t(4, n) * 0.0006
    close = 60_000.0 * np.exp(np.cumsum(ret))
    open_ = np.r_[60_000.0, close[:-1]]
    wick = np.abs(rng.normal(0, 0.0004, (2, n)))
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": rng.lognormal(3.0, 1.0, n),
        }
    )


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_batch(df: pd.DataFrame) -> dict[str, float]:
    from liqsignals import (
        LiquidationEngine,
        LiquidationModel,
        liquidation_features,
        liquidation_levels,
    )

    model = LiquidationModel(window="1w", symbol="BTC/USDT:USDT")
    liquidation_levels(df.iloc[:20_000], model)  # compile / load the numba cache
    liquidation_features(df.iloc[:20_000], model)

    def core() -> None:
        LiquidationEngine(model, summaries=False).update_many(df)

    t_core = best_of(core)
    t_levels = best_of(lambda: liquidation_levels(df, model))
    t_features = best_of(lambda: liquidation_features(df, model), repeat=2)
    return {"engine_core_s": t_core, "levels_s": t_levels, "features_s": t_features}


def bench_incremental(df: pd.DataFrame, n: int = 50_000) -> float:
    from liqsignals import LiquidationEngine, LiquidationModel

    eng = LiquidationEngine(LiquidationModel(window="1w", symbol="BTC/USDT:USDT"))
    warm = 20_000
    eng.update_many(df.iloc[:warm])
    records = df.iloc[warm : warm + n].to_dict("records")
    for r in records[:1000]:
        eng.update(r)
    t = time.perf_counter()
    for r in records[1000:]:
        eng.update(r)
    return (time.perf_counter() - t) / (len(records) - 1000) * 1e6


def _memory_child(n: int) -> None:
    """Process ``n`` candles in 20k chunks without keeping outputs; print peak RSS and state."""
    from liqsignals import LiquidationEngine, LiquidationModel

    df = synthetic_1m(n)
    eng = LiquidationEngine(LiquidationModel(window="1w", symbol="BTC/USDT:USDT"))
    eng.update_many(df.iloc[:100])  # load the kernels before the baseline
    base = _rss_mb()
    for start in range(100, n, 20_000):
        eng.update_many(df.iloc[start : start + 20_000])
    state = eng.state_nbytes
    print(json.dumps({"n": n, "rss_growth_mb": _rss_mb() - base, "state_mb": state / 2**20}))


def _rss_mb() -> float:
    """Current resident set size (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_memory() -> list[dict[str, float]]:
    out = []
    for n in (N_YEAR_1M // 4, N_YEAR_1M // 2, N_YEAR_1M):
        res = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "NUMBA_NUM_THREADS": "1"},
        )
        out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


def bench_peers(df: pd.DataFrame) -> dict[str, float | str]:
    """Per-bar streaming cost of published peers fed the same candles."""
    res: dict[str, float | str] = {}
    try:
        from wickra_radar import Radar
    except ImportError:
        res["wickra_radar"] = "not installed (pip install wickra-radar)"
    else:
        spec = {
            "signals": [
                {"kind": "oi_delta", "params": [2.0, 0.1]},
                {"kind": "oi_price_divergence", "params": [2.0, 0.1]},
                {"kind": "funding_flip", "params": [0.0005]},
            ],
            "threshold": 0.0,
        }
        radar = Radar(json.dumps(spec))
        n = 20_000
        oi = 1e5 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 1e-3, n)))
        closes = df["close"].to_numpy()[:n]
        t = time.perf_counter()
        for i in range(n):
            event = {
                "kind": "derivatives",
                "ts": i,
                "open_interest": float(oi[i]),
                "funding_rate": 0.0001,
                "mark_price": float(closes[i]),
            }
            radar.command(json.dumps({"cmd": "feed", "symbol": "BTCUSDT", "event": event}))
            radar.command('{"cmd":"alerts"}')
        res["wickra_radar_us_per_bar"] = (time.perf_counter() - t) / n * 1e6
    try:
        from liquidator_indicator import Liquidator
    except ImportError:
        res["liquidator_indicator"] = "not installed (pip install liquidator-indicator)"
    else:
        liq = Liquidator("BTC", mode="streaming", cutoff_hours=None)
        n = 1_500
        sub = df.iloc[:n]
        trades = [
            {
                "time": int(r.date.value // 1_000_000),
                "px": float(r.close),
                "sz": float(r.volume),
                "side": "B" if r.close >= r.open else "A",
                "coin": "BTC",
            }
            for r in sub.itertuples()
        ]
        t = time.perf_counter()
        for tr in trades:
            liq.update_incremental([tr])
        res["liquidator_indicator_us_per_bar"] = (time.perf_counter() - t) / n * 1e6
        res["liquidator_indicator_note"] = f"first {n} bars only: it recomputes all zones per bar"
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=N_YEAR_1M)
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--skip-peers", action="store_true")
    args = ap.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child)
        return
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    print(f"building {args.rows:,} synthetic 1m candles ...", flush=True)
    df = synthetic_1m(args.rows)
    batch = bench_batch(df)
    print(f"engine core (no summaries), 1w window: {batch['engine_core_s']:.3f} s")
    print(
        f"liquidation_levels (engine + book summaries): {batch['levels_s']:.3f} s  [target < 1.0 s]"
    )
    ratio = batch["features_s"] / batch["levels_s"]
    print(
        f"liquidation_features (all columns): {batch['features_s']:.3f} s  = {ratio:.2f}x levels  [target < 2x]"
    )
    inc = bench_incremental(df)
    print(f"incremental LiquidationEngine.update: {inc:.1f} us/candle  [target < 20 us]")
    print(
        "memory (resident set after vs. before the engine ran), 20k-row chunks, outputs not kept:"
    )
    for row in bench_memory():
        print(
            f"  {row['n']:>7,} rows: RSS growth {row['rss_growth_mb']:.1f} MB, "
            f"engine state {row['state_mb']:.2f} MB"
        )
    if not args.skip_peers:
        peers = bench_peers(df)
        for key, value in peers.items():
            if isinstance(value, float):
                print(
                    f"peer {key}: {value:.1f}  (ours: {inc:.1f} us/bar, ratio {value / inc:.1f}x)"
                )
            else:
                print(f"peer {key}: {value}")


if __name__ == "__main__":
    main()
