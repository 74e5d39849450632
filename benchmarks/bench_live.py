"""Cost of one new candle in a running dry-run / live bot, per pair.

Run: ``python benchmarks/bench_live.py [--pair ETH/USDT:USDT] [--candles 200]`` (``make bench``
runs every benchmark). The shipped ``LiqSweepReversal`` is loaded as the bot loads it
(freqtrade's Configuration, then StrategyResolver) and fed the bundled 15m candles the way the
bot's kline cache grows: a first frame of 3 x 499 candles, then one new candle at a time, at most
499 + 1,182 candles kept. Timed per new candle:

* ``bot``: ``strategy._analyze_ticker_internal(frame)``, what freqtrade calls for each pair on
  each new candle (populate_indicators + entry + exit, freqtrade's dataframe checks and its
  analysed-frame cache), on the frame copy freqtrade's data provider hands over; LiqStrategy feeds
  the new candle to the pair's engine (the incremental path);
* ``batch``: the same call in backtest mode, where LiqStrategy recomputes every ``liq_*`` column
  over the whole frame: what the bot would pay without the incremental path;
* ``liq``: the ``liq_*`` columns alone, incremental (``LiqStrategy.liq_populate``);
* ``rest``: median ``bot`` minus median ``liq``: RSI, rolling volume, signals and freqtrade's own handling;
* ``floor``: ``bot`` for a strategy with no indicator and no signal: freqtrade's own share;
* ``stream`` and ``engine``: inside ``liq``, :class:`~liqsignals.features.FeatureStream` fed the
  new candle as arrays (engine update plus the feature columns from its bounded tail) and the
  bare :class:`~liqsignals.LiquidationEngine` update.

Many pairs (``--pairs 200``, the default; 0 skips it): one strategy instance (as in one bot)
follows that many pairs, each fed the same bundled candles under its own name: start-up (the
first frame of every pair, each pair's engine built from it), the resident-memory growth that
leaves behind, and then for a few steps one new candle for every pair, timing
``LiqStrategy.liq_populate`` per pair (the ``liq_*`` columns, what liqsignals adds on top of
freqtrade's own floor). The many-pairs run is made twice: on candles alone, and with freqtrade's
DataProvider serving every pair mark candles at the candles' timeframe and 1h funding rates
(:class:`MarketProvider`), the lookups a running bot makes on every candle.

Within that step, per pair (medians): the market inputs read from the frame, the DataProvider
and the datadir (:func:`~liqsignals.strategy.market_data.market_arrays`), the pair's
``liq_*`` rows brought up to the frame (:meth:`~liqsignals.strategy.live_cache.LiveFeatureCache.
feature_frame`: the inputs as arrays, the comparison with the candles seen, the stream fed the
new candle) and the frame handed back (:class:`~liqsignals.strategy.live_cache.LiveJoin`), each
timed by a thin wrapper around it (about a microsecond each).

Target: under 5 ms per pair per candle for ``bot``; for 200 pairs at most 0.5 ms per pair per
step in liqsignals. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FIRST_FRAME = 3 * 499  # freqtrade's first fetch for 1,182 startup candles on Binance futures
KEEP = 499 + 1182  # freqtrade keeps ohlcv_candle_limit + startup_candle_count candles


FLOOR_STRATEGY = '''
from freqtrade.strategy import IStrategy


class BenchFloor(IStrategy):
    """No indicator, no signal: what freqtrade's own analysis step costs."""

    INTERFACE_VERSION = 3
    timeframe = "15m"
    can_short = True
    stoploss = -0.1
    startup_candle_count = 1182

    def populate_indicators(self, dataframe, metadata):
        return dataframe

    def populate_entry_trend(self, dataframe, metadata):
        dataframe["enter_long"] = 0
        dataframe["enter_short"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        dataframe["exit_long"] = 0
        dataframe["exit_short"] = 0
        return dataframe
'''


def load(
    live: bool, userdir: str, strategy: str = "LiqSweepReversal", path: Path | None = None
) -> Any:
    from freqtrade.configuration import Configuration
    from freqtrade.data.dataprovider import DataProvider
    from freqtrade.enums import RunMode
    from freqtrade.resolvers import StrategyResolver

    from liqsignals import sample

    args = {
        "config": [str(ROOT / "config" / "futures.json")],
        "user_data_dir": userdir,
        "datadir": str(sample.datadir()),
        "strategy": strategy,
        "strategy_path": str(path or ROOT / "strategies"),
    }
    mode = RunMode.DRY_RUN if live else RunMode.BACKTEST
    config = Configuration(args, mode).get_config()
    strategy = StrategyResolver.load_strategy(config)
    strategy.config["runmode"] = mode
    strategy.dp = DataProvider(config, None)
    return strategy


def frames(candles: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    """The frames the bot analyses: the first fetch, then one new candle each."""
    origin = len(candles) - n - FIRST_FRAME
    out = []
    for end in range(origin + FIRST_FRAME, origin + FIRST_FRAME + n + 1):
        first = max(origin, end - KEEP)
        out.append(candles.iloc[first:end].reset_index(drop=True))
    return out


def timed(fn, frames_: list[pd.DataFrame]) -> list[float]:
    """Milliseconds per call over ``frames_[1:]`` (the first call builds, and is not timed)."""
    fn(frames_[0].copy())
    out = []
    for frame in frames_[1:]:
        data = frame.copy()  # freqtrade's data provider hands out a copy
        t = time.perf_counter()
        fn(data)
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def summary(name: str, ms: list[float]) -> str:
    ms_sorted = sorted(ms)
    p90 = ms_sorted[int(0.9 * (len(ms_sorted) - 1))]
    return (
        f"{name:<6} median {statistics.median(ms):7.2f} ms   p90 {p90:7.2f} ms   "
        f"min {ms_sorted[0]:7.2f} ms   max {ms_sorted[-1]:7.2f} ms   ({len(ms)} candles)"
    )


def _core(
    candles: pd.DataFrame, stretch: list[pd.DataFrame], strategy: Any, pair: str
) -> tuple[list[float], list[float]]:
    """Per new candle: FeatureStream.update_arrays (one row, as the strategy feeds it) and the
    bare LiquidationEngine.update."""
    import numpy as np

    from liqsignals.features import FeatureStream

    cols = ("open", "high", "low", "close", "volume")
    dates = candles["date"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    values = {c: candles[c].to_numpy(dtype=np.float64) for c in cols}
    stream = FeatureStream(strategy.liq_model(pair), **strategy.liq_feature_kwargs())
    stream.update_many(stretch[0])
    start = int(candles.index[candles["date"] == stretch[0]["date"].iloc[-1]][0]) + 1
    stream_ms = []
    for i in range(start, start + len(stretch) - 1):
        row = {c: v[i : i + 1] for c, v in values.items()}
        t = time.perf_counter()
        stream.update_arrays(dates[i : i + 1], row)
        stream_ms.append((time.perf_counter() - t) * 1000.0)
    fresh = FeatureStream(strategy.liq_model(pair), **strategy.liq_feature_kwargs())
    fresh.update_many(stretch[0])
    engine = fresh.engine
    engine_ms = []
    for i in range(start, start + len(stretch) - 1):
        candle = {"date": candles["date"].iloc[i], **{c: float(values[c][i]) for c in cols}}
        t = time.perf_counter()
        engine.update(candle)
        engine_ms.append((time.perf_counter() - t) * 1000.0)
    return stream_ms, engine_ms


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _Timed:
    """``fn`` called through, its milliseconds per call appended to ``ms``."""

    def __init__(self, fn: Any, ms: list[float]) -> None:
        self.fn, self.ms = fn, ms

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.ms.append((time.perf_counter() - t) * 1000.0)


class MarketProvider:
    """freqtrade's DataProvider in a running bot as far as the strategy's market lookups go:
    ``get_pair_dataframe`` serves every pair the mark candles at the candles' timeframe and the
    1h funding rates known at the current candle (``at``), a copy per call as freqtrade hands
    them out; anything else goes to the wrapped provider. The mark candles are the candles
    with a small deterministic basis (the sample holds no 15m mark file)."""

    def __init__(self, dp: Any, candles: pd.DataFrame, funding: pd.DataFrame) -> None:
        import numpy as np

        self._dp = dp
        basis = 1.0 + 2e-4 * np.sin(np.arange(len(candles)) / 7.0)
        self._mark = candles[["date", "open", "high", "low", "close"]].copy()
        for col in ("open", "high", "low", "close"):
            self._mark[col] = self._mark[col] * basis
        self._mark["volume"] = 0.0
        self._funding = funding
        self._now: dict[str, pd.DataFrame] = {}

    def at(self, frame: pd.DataFrame) -> None:
        """The frames freqtrade holds when ``frame`` (the pair's candles) is the latest: the
        mark candles over its span, the funding rates over its span and a day before."""
        last, first = frame["date"].iloc[-1], frame["date"].iloc[0]
        mark = self._mark
        self._now = {
            "mark": mark[(mark["date"] >= first) & (mark["date"] <= last)].reset_index(drop=True),
            "funding_rate": self._funding[self._funding["date"] <= last]
            .iloc[-(len(frame) // 4 + 24) :]
            .reset_index(drop=True),
        }

    def get_pair_dataframe(
        self, pair: str, timeframe: str | None = None, candle_type: str = ""
    ) -> Any:
        frame = self._now.get(str(candle_type))
        if frame is None:
            return self._dp.get_pair_dataframe(pair, timeframe, candle_type=candle_type)
        return frame.copy()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dp, name)


def with_market(strategy: Any, candles: pd.DataFrame, pair: str) -> MarketProvider:
    """``strategy``'s DataProvider replaced by a :class:`MarketProvider` over ``candles`` and
    the sample's funding rates of the same pair."""
    from liqsignals import sample
    from liqsignals.data.datadir import load_series

    funding = load_series(sample.datadir(), pair, "1h", "funding_rate")
    provider = MarketProvider(strategy.dp, candles, funding)
    strategy.dp = provider
    return provider


def many_pairs(
    strategy: Any,
    stretch: list[pd.DataFrame],
    n_pairs: int,
    steps: int,
    market: MarketProvider | None = None,
) -> dict[str, float]:
    """``n_pairs`` pairs in one strategy: start-up seconds and RSS growth for their first
    frames, then ms per pair per new candle (median over pairs and steps) in liq_populate,
    and the medians of its three pieces (market inputs, feature rows, join). With ``market``
    (the strategy's provider) every pair also gets mark candles and funding rates from it."""
    import gc

    from liqsignals.strategy import market_data as md

    pairs = [f"P{i:03d}/USDT:USDT" for i in range(n_pairs)]
    gc.collect()
    base = _rss_mb()
    t = time.perf_counter()
    first = stretch[-steps - 1]  # the longest frames: freqtrade's full kline cache
    if market is not None:
        market.at(first)
    for pair in pairs:
        strategy.liq_populate(first.copy(), {"pair": pair})
    startup = time.perf_counter() - t
    gc.collect()
    grown = _rss_mb() - base
    per_pair: list[float] = []
    step_s: list[float] = []
    parts: dict[str, list[float]] = {"inputs": [], "features": [], "join": []}
    real_inputs, cache, join = md.market_arrays, strategy.liq_live_cache, strategy.liq_live_join
    md.market_arrays = _Timed(real_inputs, parts["inputs"])  # as LiqStrategy calls it
    cache.feature_frame = _Timed(cache.feature_frame, parts["features"])
    strategy.liq_live_join = _Timed(join, parts["join"])
    try:
        for frame in stretch[-steps:]:
            if market is not None:
                market.at(frame)
            t_step = time.perf_counter()
            for pair in pairs:
                data = frame.copy()
                t = time.perf_counter()
                strategy.liq_populate(data, {"pair": pair})
                per_pair.append((time.perf_counter() - t) * 1000.0)
            step_s.append(time.perf_counter() - t_step)
    finally:
        md.market_arrays, strategy.liq_live_join = real_inputs, join
        del cache.feature_frame
    return {
        "pairs": n_pairs,
        "startup_s": startup,
        "rss_mb": grown,
        "ms_per_pair": statistics.median(per_pair),
        "step_s": statistics.median(step_s),
        **{f"{k}_ms": statistics.median(v) if v else float("nan") for k, v in parts.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="BTC/USDT:USDT")
    parser.add_argument("--candles", type=int, default=200, help="new candles to time")
    parser.add_argument("--strategy", default="LiqSweepReversal", help="a strategy in strategies/")
    parser.add_argument("--pairs", type=int, default=200, help="pairs in one bot (0: skip)")
    parser.add_argument("--steps", type=int, default=5, help="new candles per pair (--pairs)")
    args = parser.parse_args(argv)

    import logging

    logging.disable(logging.WARNING)
    from liqsignals import sample

    candles = sample.load_candles(args.pair, "15m")
    stretch = frames(candles, args.candles)
    meta = {"pair": args.pair}
    with tempfile.TemporaryDirectory(prefix="bench-live-") as userdir:
        live = load(True, userdir, args.strategy)
        bot = timed(lambda df: live._analyze_ticker_internal(df, meta), stretch)
        stats = live.liq_stream_stats(args.pair)
        liq_strategy = load(True, userdir, args.strategy)
        liq = timed(lambda df: liq_strategy.liq_populate(df, meta), stretch)
        batch_strategy = load(False, userdir, args.strategy)
        # the batch path is slow: time a tenth of the candles
        batch = timed(
            lambda df: batch_strategy._analyze_ticker_internal(df, meta),
            stretch[: max(2, args.candles // 10) + 1],
        )
        stream_ms, engine_ms = _core(candles, stretch, live, args.pair)
        floor_dir = Path(userdir) / "floor"
        floor_dir.mkdir()
        (floor_dir / "BenchFloor.py").write_text(FLOOR_STRATEGY)
        empty = load(True, userdir, "BenchFloor", floor_dir)
        floor = timed(lambda df: empty._analyze_ticker_internal(df, meta), stretch)
        many = market = None
        if args.pairs > 0:
            many = many_pairs(load(True, userdir, args.strategy), stretch, args.pairs, args.steps)
            with_dp = load(True, userdir, args.strategy)
            provider = with_market(with_dp, candles, args.pair)
            market = many_pairs(with_dp, stretch, args.pairs, args.steps, provider)
    print(
        f"{args.pair} 15m, {args.strategy}, frames of {len(stretch[1])}..{len(stretch[-1])} "
        "candles (freqtrade's kline cache)"
    )
    print(summary("bot", bot))
    print(summary("liq", liq))
    rest = statistics.median(bot) - statistics.median(liq)
    print(f"{'rest':<6} median {rest:7.2f} ms   (bot median minus liq median)")
    print(summary("batch", batch))
    print(summary("floor", floor))
    print(summary("stream", stream_ms))
    print(summary("engine", engine_ms))
    print(
        f"engine: {stats.rebuilds} build, {stats.updates} incremental updates, "
        f"{stats.candles_fed} candles fed in total"
    )
    ratio = statistics.median(batch) / statistics.median(bot)
    verdict = "meets" if statistics.median(bot) < 5.0 else "MISSES"
    print(f"incremental is {ratio:.1f}x faster than recomputing; {verdict} the 5 ms target")
    runs = (
        (many, "candles alone (no mark or funding from freqtrade's DataProvider)"),
        (market, "with mark candles and funding rates from freqtrade's DataProvider"),
    )
    for res, what in runs:
        if res is None:
            continue
        n = res["pairs"]
        print(f"-- {what}:")
        if res is many:  # the second run reuses the memory the first one freed
            print(
                f"{n} pairs in one bot, frames of {len(stretch[-1])} candles: start-up "
                f"{res['startup_s']:.1f} s, resident memory +{res['rss_mb']:.0f} MB "
                f"({res['rss_mb'] / n:.2f} MB per pair)"
            )
        verdict = "meets" if res["ms_per_pair"] <= 0.5 else "MISSES"
        print(
            f"{n} pairs, one new 15m candle each: liq {res['ms_per_pair']:.3f} ms per pair "
            f"(median), {res['step_s'] * 1000:.0f} ms per step for all pairs; {verdict} the "
            "0.5 ms per pair target"
        )
        print(
            f"  of which (medians per pair): market inputs {res['inputs_ms']:.3f} ms, feature "
            f"rows {res['features_ms']:.3f} ms, join {res['join_ms']:.3f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
