"""Engine and feature speed, incremental cost, memory, and published peers on the same data.

Run: ``python benchmarks/bench_engine.py`` (``make bench`` runs every benchmark).

First, side by side in one process over the same 100,000 seeded synthetic 1m candles
(``--side-rows``), five alternating runs of each side (``--runs``), medians printed:
liqsignals batch (``liquidation_levels``, default model, 1w window, all book summaries) and
incremental (``LiquidationEngine.update`` with a dict per candle, over the last 20,000 of them
after the rest went through ``update_many``) in microseconds per candle, the peer
``wickra-radar`` (the ``bench`` extra) fed the same closes bar by bar through its public Python
API, both ratios (peer time over ours), and the engine state in bytes per pair. Then the
year-long figures. Targets:

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
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

N_YEAR_1M = 525_600


def synthetic_1m(n: int, seed: int = 42, minutes: int = 1) -> pd.DataFrame:
    """Random-walk 1m candles around 60,000 with BTC-like volatility and volume (``minutes``:
    candles of that many minutes instead, moves scaled by its square root, volume by it)."""
    rng = np.random.default_rng(seed)
    ret = rng.standard_t(4, n) * 0.0006 * np.sqrt(minutes)
    close = 60_000.0 * np.exp(np.cumsum(ret))
    open_ = np.r_[60_000.0, close[:-1]]
    wick = np.abs(rng.normal(0, 0.0004 * np.sqrt(minutes), (2, n)))
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq=f"{minutes}min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": rng.lognormal(3.0, 1.0, n) * minutes,
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


def _radar_spec() -> str:
    return json.dumps(
        {
            "signals": [
                {"kind": "oi_delta", "params": [2.0, 0.1]},
                {"kind": "oi_price_divergence", "params": [2.0, 0.1]},
                {"kind": "funding_flip", "params": [0.0005]},
            ],
            "threshold": 0.0,
        }
    )


def radar_us_per_bar(closes: np.ndarray) -> float:
    """wickra-radar fed one derivatives event per bar and asked for its alerts, per bar."""
    from wickra_radar import Radar

    radar = Radar(_radar_spec())
    n = closes.shape[0]
    oi = 1e5 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 1e-3, n)))
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
    return (time.perf_counter() - t) / n * 1e6


def _timed(fn: Any) -> tuple[float, float]:
    """Wall (``perf_counter``) and CPU (``process_time``) seconds of ``fn()``."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def side_by_side(n: int, runs: int, n_inc: int = 20_000) -> dict[str, Any]:
    """Alternating runs of liqsignals batch, liqsignals incremental and the peer on the same
    ``n`` candles; medians in microseconds per candle (wall clock, and CPU time of the process
    under ``cpu_*``), ratios and the state bytes per pair."""
    import liqsignals
    from liqsignals import LiquidationEngine, LiquidationModel, liquidation_levels

    df = synthetic_1m(n)
    model = LiquidationModel(window="1w")
    liquidation_levels(df.iloc[:20_000], model)  # compile / load the numba cache
    warm = LiquidationEngine(model)  # and the per-candle path's entry points
    warm.update_many(df.iloc[:1_000])
    for r in df.iloc[1_000:1_100].to_dict("records"):
        warm.update(r)
    n_inc = min(n_inc, n // 2)
    records = df.iloc[n - n_inc :].to_dict("records")
    try:
        import wickra_radar  # noqa: F401
    except ImportError:
        have_peer = False
    else:
        have_peer = True
    closes = df["close"].to_numpy()
    res: dict[str, list[float]] = {k: [] for k in ("batch", "update", "peer")}
    cpu: dict[str, list[float]] = {k: [] for k in ("batch", "update", "peer")}
    state = 0

    def peer() -> None:
        radar_us_per_bar(closes[:n_inc])

    for _ in range(runs):
        wall, proc = _timed(lambda: liquidation_levels(df, model))
        res["batch"].append(wall / n * 1e6)
        cpu["batch"].append(proc / n * 1e6)
        eng = LiquidationEngine(model)
        eng.update_many(df.iloc[: n - n_inc])

        def incremental(update: Any = eng.update) -> None:
            for r in records:
                update(r)

        wall, proc = _timed(incremental)
        res["update"].append(wall / n_inc * 1e6)
        cpu["update"].append(proc / n_inc * 1e6)
        state = eng.state_nbytes
        if have_peer:
            wall, proc = _timed(peer)
            res["peer"].append(wall / n_inc * 1e6)
            cpu["peer"].append(proc / n_inc * 1e6)
    out: dict[str, Any] = {k: statistics.median(v) if v else None for k, v in res.items()}
    out.update({f"cpu_{k}": statistics.median(v) if v else None for k, v in cpu.items()})
    out.update(runs=runs, rows=n, incremental_rows=n_inc, state_bytes=state)
    out["package"] = os.path.dirname(liqsignals.__file__)
    return out


def print_side_by_side(r: dict[str, Any]) -> None:
    print(
        f"side by side, {r['rows']:,} seeded synthetic 1m candles, default model, 1w window, "
        f"median of {r['runs']} alternating runs of each side (wall clock; CPU time of the "
        f"process in brackets):"
    )
    print(
        f"  liqsignals batch (liquidation_levels, all summaries): {r['batch']:.3f} us/candle "
        f"[{r['cpu_batch']:.3f}]"
    )
    print(
        f"  liqsignals incremental (LiquidationEngine.update, dict, last "
        f"{r['incremental_rows']:,} candles): {r['update']:.2f} us/candle [{r['cpu_update']:.2f}]"
    )
    if r["peer"] is None:
        print("  peer wickra-radar: not installed (pip install '.[bench]')")
    else:
        print(
            f"  peer wickra-radar 0.2 (bar by bar, public Python API): {r['peer']:.2f} us/candle "
            f"[{r['cpu_peer']:.2f}]"
        )
        print(
            f"  ratios (peer time / ours): batch {r['peer'] / r['batch']:.1f}x "
            f"[{r['cpu_peer'] / r['cpu_batch']:.1f}x]  (target >= 20x), "
            f"incremental {r['peer'] / r['update']:.2f}x [{r['cpu_peer'] / r['cpu_update']:.2f}x]"
            f"  (target >= 2x)"
        )
    print(
        f"  engine state per pair, 1w window of 1m candles: {r['state_bytes']:,} bytes "
        f"({r['state_bytes'] / 2**20:.2f} MB)  [target <= 2 MB]"
    )


def bench_peers(df: pd.DataFrame) -> dict[str, float | str]:
    """Per-bar streaming cost of published peers fed the same candles."""
    res: dict[str, float | str] = {}
    try:
        from wickra_radar import Radar
    except ImportError:
        res["wickra_radar"] = "not installed (pip install wickra-radar)"
    else:
        radar = Radar(_radar_spec())
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
    ap.add_argument("--side-rows", type=int, default=100_000, help="candles side by side")
    ap.add_argument("--runs", type=int, default=5, help="alternating runs side by side")
    ap.add_argument("--side-only", action="store_true", help="only the side-by-side figures")
    ap.add_argument("--json", action="store_true", help="the side-by-side figures as JSON")
    args = ap.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child)
        return
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    side = side_by_side(args.side_rows, args.runs)
    if args.json:
        print(json.dumps(side))
    else:
        print_side_by_side(side)
    if args.side_only:
        return
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
