"""Live = backtest: the signals the dry-run bot produces equal what ``freqtrade backtesting
--export signals`` produces for the same candles (the classic "live differs from backtest" bug).

Three views of one stretch of history, per candle:

* **the running bot** (the e2e scenario of ``_dryrun_support``): its analysed dataframe as its
  REST API serves it (``/api/v1/pair_candles``), and its own log of each analysed last candle;
* **freqtrade's live analysis, candle by candle** (in-process): ``_analyze_ticker_internal``,
  what the bot calls on every new candle, on frames shaped like the bot's kline cache (a first
  frame of 3 x 499 candles, then one new candle at a time, at most 499 + 1,182 kept), so the
  strategy's incremental path runs once per candle;
* **a real backtest**: ``freqtrade backtesting --export signals`` on the stored data, with every
  trade closing on its entry candle (``minimal_roi {"0": -1}``, no limit on open trades) so that
  every entry signal becomes a trade and lands in the ``*_signals.pkl`` export.

Date alignment: the bot runs on history shifted by ``offset_ms`` (a whole number of hours,
``LiveClock(align_ms=HOUR_MS)``); its dates are mapped back with ``served - offset`` before any
comparison. Compared candles are those with a full startup behind them in the bot's first frame
(row >= ``startup_candle_count``, freqtrade's promise to the strategy), up to the last candle it
analysed.

The same comparison on data with every input (open interest, funding, mark, taker volume,
long/short ratio; synthetic series where the shared data has none) is in
``test_dryrun_inputs.py``: the bot's columns and signals there equal the batch computation and
``freqtrade backtesting --export signals``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from _dryrun_support import (
    LIVE_FRAME,
    PAIRS,
    ROOT,
    TF_MS,
    TIMEFRAME,
    PaperRun,
    load_strategy,
    paper_runs,
)

from liqsignals import sample
from liqsignals.replay.offline import run_offline

pytestmark = pytest.mark.slow

STARTUP = 1182  # LiqSweepReversal.startup_candle_count
KEEP = 499 + STARTUP  # freqtrade keeps ohlcv_candle_limit + startup candles per pair
#: columns compared value by value (every liq_* column plus the strategy's own indicators)
EXTRA = ("rsi", "volume_mean")
TOL = {"rtol": 1e-9, "atol": 1e-9}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> PaperRun:
    result = paper_runs(tmp_path_factory.getbasetemp() / "paper-runs")["e2e"]
    assert result.error is None, result.error
    return result


def bot_frame(run: PaperRun, pair: str) -> pd.DataFrame:
    """The bot's analysed dataframe (REST API), dated on the stored data's time axis."""
    payload = run.snapshots[f"candles:{pair}"]
    df = pd.DataFrame(payload["data"], columns=payload["columns"])
    served = pd.to_datetime(df["__date_ts"], unit="ms", utc=True)
    df["date"] = served - pd.Timedelta(milliseconds=run.offset_ms)
    return df.drop(columns=["__date_ts"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def stretch(run: PaperRun) -> dict[str, pd.DataFrame]:
    """Per pair: the bot's compared rows (full startup behind them)."""
    out = {}
    for pair in PAIRS:
        df = bot_frame(run, pair)
        assert len(df) >= LIVE_FRAME - 5, len(df)
        out[pair] = df.iloc[STARTUP:].reset_index(drop=True)
    return out


@dataclass
class Backtest:
    """What ``freqtrade backtesting --export signals`` produced for the stretch."""

    #: per pair and side: dates of the signal candles (a trade opens on the next candle)
    dates: dict[tuple[str, str], set[pd.Timestamp]]
    #: per pair: the exported signal candles with every indicator column
    rows: dict[str, pd.DataFrame]

    def signals(self, pair: str, side: str) -> set[pd.Timestamp]:
        return self.dates[(pair, side)]


@pytest.fixture(scope="module")
def backtest(
    run: PaperRun, stretch: dict[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> Backtest:
    """``freqtrade backtesting --export signals`` over the compared stretch and every candle the
    bot analysed."""
    from freqtrade.data.btanalysis import load_backtest_analysis_data, load_backtest_data

    first = min(df["date"].iloc[0] for df in stretch.values())
    analysed = [run.served_to_data(pd.Timestamp(r["date"])) for r in run.signal_log]
    last = max([df["date"].iloc[-1] for df in stretch.values()] + analysed)
    # a trade opens on the candle after its signal: end two candles after the last compared one
    timerange = f"{first.value // 10**9}-{(last.value // 10**6 + 2 * TF_MS) // 1000}"
    tmp = tmp_path_factory.mktemp("parity-backtest")
    (tmp / "user_data").mkdir()
    overlay = tmp / "every-signal-trades.json"
    overlay.write_text(
        json.dumps(
            {
                "minimal_roi": {"0": -1},
                "max_open_trades": -1,
                "stake_amount": 100,
                "dry_run_wallet": 1_000_000,
            }
        )
    )
    cmd = [
        sys.executable, "-m", "freqtrade", "backtesting",
        "-c", str(ROOT / "config" / "futures.json"), "-c", "{overlay}", "-c", str(overlay),
        "--strategy-path", str(ROOT / "strategies"), "-s", "LiqSweepReversal",
        "--datadir", str(sample.datadir()), "--userdir", str(tmp / "user_data"),
        "--timeframe", TIMEFRAME, "--timerange", timerange,
        "--export", "signals", "--cache", "none",
    ]  # fmt: skip
    result = run_offline(cmd, sample.datadir(), cwd=ROOT, echo=False, timeout=240)
    assert result.returncode == 0, result.output[-3000:]
    results = tmp / "user_data" / "backtest_results"
    trades = load_backtest_data(results)
    exported = load_backtest_analysis_data(results, "signals")["LiqSweepReversal"]
    rejected = load_backtest_analysis_data(results, "rejected") or {}
    # every signal became a trade: nothing was turned away for lack of a slot
    assert not any(len(df) for df in rejected.get("LiqSweepReversal", {}).values())
    # every trade is over within its entry candle, so the pair is free for the next signal
    held = pd.to_datetime(trades["close_date"]) - pd.to_datetime(trades["open_date"])
    assert (held < pd.Timedelta(milliseconds=TF_MS)).all(), trades[["open_date", "close_date"]]
    assert len(trades) == sum(len(df) for df in exported.values())
    dates: dict[tuple[str, str], set[pd.Timestamp]] = {}
    for pair in PAIRS:
        mine = trades[trades["pair"] == pair]
        for side, short in (("long", False), ("short", True)):
            opened = mine.loc[mine["is_short"] == short, "open_date"]
            dates[(pair, side)] = {
                pd.Timestamp(d) - pd.Timedelta(milliseconds=TF_MS) for d in opened
            }
        rows = exported.get(pair)
        exported_dates = set() if rows is None or len(rows) == 0 else set(rows["date"])
        assert exported_dates == dates[(pair, "long")] | dates[(pair, "short")]
    return Backtest(dates, {pair: exported.get(pair, pd.DataFrame()) for pair in PAIRS})


def signal_dates(df: pd.DataFrame, side: str) -> set[pd.Timestamp]:
    if len(df) == 0 or f"enter_{side}" not in df:
        return set()
    return {pd.Timestamp(d) for d in df.loc[df[f"enter_{side}"] == 1, "date"]}


def in_window(dates: set[pd.Timestamp], window: pd.DataFrame) -> set[pd.Timestamp]:
    lo, hi = window["date"].iloc[0], window["date"].iloc[-1]
    return {d for d in dates if lo <= d <= hi}


def test_the_compared_stretch_has_signals(run: PaperRun, stretch: dict[str, pd.DataFrame]) -> None:
    sig = run.signal
    df = stretch[sig.pair]
    assert df["date"].iloc[-1] >= sig.date
    assert sig.date in signal_dates(df, sig.side)
    assert sum(len(d) for d in stretch.values()) >= 2 * 250


def test_bot_signals_equal_backtest_signals(
    stretch: dict[str, pd.DataFrame], backtest: Backtest
) -> None:
    for pair, df in stretch.items():
        for side in ("long", "short"):
            live = signal_dates(df, side)
            bt = in_window(backtest.signals(pair, side), df)
            assert live == bt, (pair, side, sorted(live ^ bt))


def test_bot_values_equal_backtest_values(
    stretch: dict[str, pd.DataFrame], backtest: Backtest
) -> None:
    """At every signal candle the backtest exported, the bot's liq_* columns are the same."""
    checked = 0
    for pair, df in stretch.items():
        bt = backtest.rows[pair]
        if len(bt) == 0:
            continue
        bt = bt[bt["date"].between(df["date"].iloc[0], df["date"].iloc[-1])]
        cols = [c for c in bt.columns if c.startswith("liq_")] + list(EXTRA)
        merged = df.merge(bt, on="date", suffixes=("", "_bt"))
        assert len(merged) == len(bt)
        for col in cols:
            np.testing.assert_allclose(
                merged[col].astype(float), merged[f"{col}_bt"].astype(float), **TOL, err_msg=col
            )
        checked += len(merged)
    assert checked >= 1


def test_bot_values_equal_batch_values_on_every_candle(stretch: dict[str, pd.DataFrame]) -> None:
    """Every compared candle, not only signal candles: the bot's columns equal the batch
    computation freqtrade's backtesting runs (populate_indicators on the stored candles)."""
    for pair, df in stretch.items():
        batch = _batch(pair)
        merged = df.merge(batch, on="date", suffixes=("", "_bt"))
        assert len(merged) == len(df)
        cols = [c for c in batch.columns if c.startswith("liq_")] + list(EXTRA)
        for col in cols:
            np.testing.assert_allclose(
                merged[col].astype(float), merged[f"{col}_bt"].astype(float), **TOL, err_msg=col
            )
        for side in ("long", "short"):
            assert (merged[f"enter_{side}"].fillna(0) == merged[f"enter_{side}_bt"].fillna(0)).all()


def test_bot_decisions_per_analysed_candle_equal_backtest(
    run: PaperRun, backtest: Backtest
) -> None:
    """The bot's own record of each analysed last candle (what it acted on) against the
    backtest's signal for that candle."""
    assert run.signal_log
    for rec in run.signal_log:
        date = run.served_to_data(pd.Timestamp(rec["date"]))
        for side in ("long", "short"):
            expected = date in backtest.signals(rec["pair"], side)
            assert bool(rec[f"enter_{side}"]) == expected, (rec["pair"], str(date), side)
        # and the values it logged (a full build or an incremental update) are the batch's
        batch = _batch(rec["pair"]).set_index("date").loc[date]
        for col, value in rec["values"].items():
            np.testing.assert_allclose(
                np.nan if value is None else value, float(batch[col]), **TOL, err_msg=col
            )


def test_incremental_analysis_candle_by_candle_equals_backtest(
    stretch: dict[str, pd.DataFrame], backtest: Backtest
) -> None:
    """freqtrade's live analysis (``_analyze_ticker_internal``) fed one new candle at a time over
    the compared stretch, as a bot running through it would: the last candle's signals equal the
    backtest's and its values the batch's, with one engine build and one update per candle."""
    from freqtrade.data.dataprovider import DataProvider

    for pair, window in stretch.items():
        candles = sample.load_candles(pair, TIMEFRAME)
        pos = candles.index[candles["date"].isin(window["date"])].to_numpy()
        assert len(pos) == len(window) and (np.diff(pos) == 1).all()
        strategy = load_strategy(live=True)
        strategy.dp = DataProvider(strategy.config, None)
        batch = _batch(pair).set_index("date")
        bt = {s: backtest.signals(pair, s) for s in ("long", "short")}
        cols = [c for c in batch.columns if c.startswith("liq_")] + list(EXTRA)
        start = int(pos[0])
        # the kline cache: the first fetch, then new candles appended, the oldest aged out
        # beyond KEEP candles
        origin = start + 1 - LIVE_FRAME
        for end in range(start, int(pos[-1]) + 1):
            first = max(origin, end + 1 - KEEP)
            frame = candles.iloc[first : end + 1].reset_index(drop=True)
            out = strategy._analyze_ticker_internal(frame, {"pair": pair})
            last = out.iloc[-1]
            date = pd.Timestamp(last["date"])
            for side in ("long", "short"):
                assert (last.get(f"enter_{side}") == 1) == (date in bt[side]), (pair, date, side)
            np.testing.assert_allclose(
                last[cols].to_numpy(dtype=float),
                batch.loc[date, cols].to_numpy(dtype=float),
                **TOL,
                err_msg=f"{pair} {date}",
            )
        stats = strategy.liq_stream_stats(pair)
        # one build from the first frame, then exactly one new candle per analysis
        assert stats.rebuilds == 1 and stats.updates == len(window) - 1, stats
        assert stats.candles_fed == LIVE_FRAME + len(window) - 1, stats


_BATCH: dict[str, pd.DataFrame] = {}


def _batch(pair: str) -> pd.DataFrame:
    """populate_indicators + populate_entry_trend on all stored candles (backtest mode)."""
    if pair not in _BATCH:
        strategy = load_strategy()
        df = sample.load_candles(pair, TIMEFRAME)
        df = strategy.populate_indicators(df.copy(), {"pair": pair})
        df = strategy.populate_entry_trend(df, {"pair": pair})
        for side in ("long", "short"):
            if f"enter_{side}" not in df:
                df[f"enter_{side}"] = 0.0
        _BATCH[pair] = df
    return _BATCH[pair]


def test_stretch_fixture_is_on_the_data_axis(stretch: dict[str, pd.DataFrame]) -> None:
    """Sanity of the date mapping: mapped bot candles are stored candles with the same prices."""
    for pair, df in stretch.items():
        stored = sample.load_candles(pair, TIMEFRAME)
        merged = df.merge(stored, on="date", suffixes=("", "_stored"))
        assert len(merged) == len(df)
        for col in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(merged[col].astype(float), merged[f"{col}_stored"])
