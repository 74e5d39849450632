"""Every input in every run mode: a dry-run bot on the live replay exchange gets open interest,
funding, mark, taker buy volume and the long/short ratio, with no opt-in setting, and computes
the same columns and signals as a backtest on the same data.

The shared data has no open interest, taker volume, long/short ratio or 15m mark candles, so the
replay serves a copy of the bundled sample with synthetic (seeded) series files added. The bot
(``LiqMagnetTrend``, whose funding filter reads ``funding_rate``) gets mark candles and funding
through freqtrade's informative pairs and fetches open interest, taker volume and the long/short
ratio itself (:class:`liqsignals.live.series.SeriesFetcher`) over ccxt from the replay.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _dryrun_support import (
    LIVE_FRAME,
    PAIRS,
    TF_MS,
    TIMEFRAME,
    Bot,
    PaperRun,
    Signal,
    backtest_entries,
    load_strategy,
    run_scenario,
)
from freqtrade.enums import RunMode

from liqsignals import sample
from liqsignals.data import datadir as dd
from liqsignals.replay import ReplayExchange

STRATEGY = "LiqMagnetTrendPaper"
INPUTS = "open_interest, funding_rate, mark_high, mark_low, taker_buy_volume, long_short_ratio"
#: the synthetic series cover the last days of the sample (the bot's frame and more)
SERIES_DAYS = 40
TOL = {"rtol": 1e-9, "atol": 1e-9}


def synthetic_series(datadir: Path, pair: str, seed: int) -> None:
    """Seeded 15m open interest, taker volume, long/short ratio and mark candles for the last
    ``SERIES_DAYS`` of ``pair``'s sample candles, in the layouts ``liqsignals download`` and
    ``freqtrade download-data`` write."""
    rng = np.random.default_rng(seed)
    candles = sample.load_candles(pair, TIMEFRAME)
    c = candles.iloc[-SERIES_DAYS * 96 :].reset_index(drop=True)
    n = len(c)
    close = c["close"].to_numpy()
    amount = 70_000 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    oi = pd.DataFrame(
        {"date": c["date"], "open_interest_amount": amount, "open_interest_value": amount * close}
    )
    dd.save_series(oi, datadir, pair, TIMEFRAME, "open_interest")
    buy = c["volume"].to_numpy() * rng.uniform(0.25, 0.75, n)
    taker = pd.DataFrame(
        {"date": c["date"], "taker_buy_volume": buy, "taker_sell_volume": c["volume"] - buy}
    )
    dd.save_series(taker, datadir, pair, TIMEFRAME, "taker_volume")
    long_acc = rng.uniform(0.35, 0.7, n)
    ratio = pd.DataFrame(
        {
            "date": c["date"],
            "long_short_ratio": long_acc / (1 - long_acc),
            "long_account": long_acc,
            "short_account": 1 - long_acc,
        }
    )
    dd.save_series(ratio, datadir, pair, TIMEFRAME, "long_short_ratio")
    basis = 1 + rng.normal(0, 2e-4, n)  # mark = last x a small basis
    mark = pd.DataFrame(
        {
            "date": c["date"],
            "open": c["open"] * basis,
            "high": c["high"] * basis,
            "low": c["low"] * basis,
            "close": c["close"] * basis,
            "volume": 0.0,
        }
    )
    dd.save_candles(mark, datadir, pair, TIMEFRAME, "mark")


def enriched_datadir(root: Path) -> Path:
    """A copy of the bundled sample plus :func:`synthetic_series` for both pairs."""
    datadir = root / "binance"
    if not datadir.exists():
        shutil.copytree(sample.datadir(), datadir)
        for i, pair in enumerate(PAIRS):
            synthetic_series(datadir, pair, seed=20 + i)
    return datadir


# ---------------------------------------------------------------------- in process (no bot)


class LiveDP:
    """A dry-run DataProvider without an exchange: frames per candle type (a strategy driven
    by hand does not fetch series itself)."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.runmode = RunMode.DRY_RUN
        self.frames = frames

    def get_pair_dataframe(self, pair: str, timeframe: str, candle_type: str = "") -> pd.DataFrame:
        return self.frames.get(candle_type, pd.DataFrame())

    def current_whitelist(self) -> list[str]:
        return list(PAIRS)


def test_liq_magnet_trends_funding_filter_works_in_dry_run():
    pair = PAIRS[1]  # ETH: long and short signals in the last 4,000 candles
    candles = sample.load_candles(pair, TIMEFRAME).iloc[-4000:].reset_index(drop=True)
    fr = dd.load_funding_rate(sample.datadir(), pair)
    strategy = load_strategy("LiqMagnetTrend", live=True)
    strategy.dp = LiveDP({"funding_rate": fr.rename(columns={"funding_rate": "open"})})
    assert strategy.liq_live()
    out = strategy.populate_indicators(candles.copy(), {"pair": pair})
    # dry-run reads funding now (no opt-in): the latest event at or before each candle's open
    pos = np.searchsorted(fr["date"].to_numpy(), candles["date"].to_numpy(), side="right") - 1
    np.testing.assert_array_equal(out["funding_rate"], fr["funding_rate"].to_numpy()[pos])
    entries = {}
    for name, rate in (("stored", None), ("crowded long", 0.01), ("crowded short", -0.01)):
        frame = out.copy() if rate is None else out.assign(funding_rate=rate)
        frame = strategy.populate_entry_trend(frame, {"pair": pair})
        entries[name] = (
            int((frame["enter_long"] == 1).sum()),
            int((frame["enter_short"] == 1).sum()),
        )
    longs, shorts = entries["stored"]
    assert longs > 0 and shorts > 0, entries
    assert entries["crowded long"] == (0, shorts)  # no longs on very positive funding
    assert entries["crowded short"] == (longs, 0)  # no shorts on very negative funding


def test_a_coarser_mark_is_refused_in_dry_run_and_logged_once(caplog):
    pair = PAIRS[0]
    candles = sample.load_candles(pair, TIMEFRAME).iloc[-1500:].reset_index(drop=True)
    strategy = load_strategy("LiqMagnetTrend", live=True)  # the sample holds 1h mark only
    strategy.dp = LiveDP({})
    with caplog.at_level(logging.INFO, logger="liqsignals.strategy.market_data"):
        for end in (1498, 1499, 1500):
            strategy.populate_indicators(candles.iloc[:end].copy(), {"pair": pair})
    text = [r.getMessage() for r in caplog.records]
    refused = [m for m in text if m.startswith(f"liqsignals: no mark for {pair}")]
    assert len(refused) == 1 and "only 1h mark candles, coarser than the 15m" in refused[0]
    assert f"liqsignals inputs for {pair}: candles only" in text


# ---------------------------------------------------------------------- the bot


PAPER = '''
"""LiqMagnetTrend for the dry-run input tests (unchanged)."""

from LiqMagnetTrend import LiqMagnetTrend


class LiqMagnetTrendPaper(LiqMagnetTrend):
    pass
'''


def _analysed(bot: Bot, pair: str) -> dict[str, Any] | None:
    got = bot.try_api(f"pair_candles?pair={pair}&timeframe={TIMEFRAME}", timeout=30)
    return got if got and got.get("data") else None


def _inputs_steps(bot: Bot, ex: ReplayExchange, snap: dict[str, Any], timing: dict[str, float]):
    t0 = time.monotonic()
    bot.wait_ready()
    bot.wait_analysed(PAIRS, timeout=240)
    timing["analysed"] = time.monotonic() - t0
    for pair in PAIRS:
        snap[f"candles:{pair}"] = bot.wait_for(
            f"{pair} candles", lambda p=pair: _analysed(bot, p), 60
        )
    snap["log"] = bot.log()
    bot.stop()


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return enriched_datadir(tmp_path_factory.mktemp("inputs-data"))


@pytest.fixture(scope="module")
def run(datadir: Path, tmp_path_factory: pytest.TempPathFactory) -> PaperRun:
    # "now" two hours before the data ends: a full bot frame behind it, series covering it
    end_ms = int(sample.load_candles(PAIRS[0], TIMEFRAME)["date"].iloc[-1].value // 10**6) + TF_MS
    start = end_ms - 2 * 3_600_000
    signal = Signal(PAIRS[0], pd.Timestamp(start - TF_MS, unit="ms", tz="UTC"), "long", start, 0)
    workdir = tmp_path_factory.mktemp("inputs-bot")
    (workdir / "strategies").mkdir(parents=True)
    (workdir / "strategies" / f"{STRATEGY}.py").write_text(PAPER)
    result = run_scenario(
        "inputs", workdir, signal, _inputs_steps, datadir=datadir, strategy=STRATEGY
    )
    assert result.error is None, result.error
    return result


def _bot_frame(run: PaperRun, pair: str) -> pd.DataFrame:
    payload = run.snapshots[f"candles:{pair}"]
    df = pd.DataFrame(payload["data"], columns=payload["columns"])
    served = pd.to_datetime(df["__date_ts"], unit="ms", utc=True)
    df["date"] = served - pd.Timedelta(milliseconds=run.offset_ms)
    return df.drop(columns=["__date_ts"]).reset_index(drop=True)


_BATCH: dict[tuple[str, str], pd.DataFrame] = {}


def _batch(pair: str, datadir: Path, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """What freqtrade's backtesting computes: populate_indicators + populate_entry_trend on all
    stored candles, in backtest mode, with ``datadir``'s files (``params``: model settings)."""
    key = (pair, str(datadir), repr(params))
    if key not in _BATCH:
        from freqtrade.data.dataprovider import DataProvider

        class BacktestDP(DataProvider):
            """freqtrade's backtest DataProvider; funding read from the file as freqtrade's
            backtesting reads it (its own lookup needs the exchange object for that)."""

            def get_pair_dataframe(self, pair, timeframe=None, candle_type=""):  # type: ignore[no-untyped-def]
                if candle_type == "funding_rate":
                    fr = dd.load_funding_rate(datadir, pair)
                    return fr.rename(columns={"funding_rate": "open"})
                return super().get_pair_dataframe(pair, timeframe, candle_type=candle_type)

        strategy = load_strategy("LiqMagnetTrend", datadir=datadir)
        strategy.config["dataformat_ohlcv"] = "feather"  # freqtrade's CLI default
        strategy.dp = BacktestDP(strategy.config, None)
        if params:
            strategy.liq_params = {**strategy.liq_params, **params}
        df = sample.load_candles(pair, TIMEFRAME)
        df = strategy.populate_indicators(df.copy(), {"pair": pair})
        _BATCH[key] = strategy.populate_entry_trend(df, {"pair": pair})
    return _BATCH[key]


@pytest.mark.slow
def test_every_input_reaches_the_strategy_in_dry_run(run: PaperRun):
    log = run.snapshots["log"]
    for pair in PAIRS:
        assert f"liqsignals inputs for {pair}: {INPUTS}" in log, log[-4000:]
    # the series freqtrade cannot serve came from the replay, fetched by the strategy
    for path in ("/futures/data/openInterestHist", "/futures/data/takerlongshortRatio",
                 "/futures/data/globalLongShortAccountRatio", "/fapi/v1/markPriceKlines",
                 "/fapi/v1/fundingRate"):  # fmt: skip
        assert run.requests.get(f"GET {path}", 0) > 0, (path, run.requests)


@pytest.mark.slow
def test_the_inputs_change_the_columns_and_the_bot_equals_the_backtest(
    run: PaperRun, datadir: Path
):
    startup = load_strategy("LiqMagnetTrend").startup_candle_count
    compared = 0
    for pair in PAIRS:
        bot = _bot_frame(run, pair)
        assert len(bot) >= LIVE_FRAME - 5, len(bot)
        bot = bot.iloc[startup:].reset_index(drop=True)
        assert len(bot) > 200
        with_inputs = _batch(pair, datadir)
        candles_only = _batch(pair, sample.datadir())
        merged = bot.merge(with_inputs, on="date", suffixes=("", "_bt"))
        assert len(merged) == len(bot)
        cols = [c for c in with_inputs.columns if c.startswith("liq_")] + ["funding_rate"]
        for col in cols:
            np.testing.assert_allclose(
                merged[col].astype(float), merged[f"{col}_bt"].astype(float), **TOL, err_msg=col
            )
        for side in ("long", "short"):
            live = merged[f"enter_{side}"].fillna(0).to_numpy()
            assert (live == merged[f"enter_{side}_bt"].fillna(0).to_numpy()).all(), (pair, side)
        # the inputs matter: the same candles on candles alone give other columns
        plain = bot.merge(candles_only, on="date", suffixes=("", "_plain"))
        changed = [
            c
            for c in ("liq_long_total", "liq_short_total", "liq_imbalance")
            if not np.allclose(plain[c].astype(float), plain[f"{c}_plain"].astype(float))
        ]
        assert changed, pair
        compared += len(merged)
    assert compared > 400


@pytest.mark.slow
def test_bot_signals_equal_backtest_signals_with_every_input(
    run: PaperRun, datadir: Path, tmp_path: Path
):
    """The parity test (bot signals == ``freqtrade backtesting --export signals``) on data with
    every input: the compared candles' entries of the bot equal the backtest's trades."""
    startup = load_strategy("LiqMagnetTrend").startup_candle_count
    frames = {p: _bot_frame(run, p).iloc[startup:].reset_index(drop=True) for p in PAIRS}
    first = min(df["date"].iloc[0] for df in frames.values())
    last = max(df["date"].iloc[-1] for df in frames.values())
    bt = backtest_entries(datadir, "LiqMagnetTrend", first, last, tmp_path)
    signals = 0
    for pair, df in frames.items():
        lo, hi = df["date"].iloc[0], df["date"].iloc[-1]
        for side in ("long", "short"):
            live = {pd.Timestamp(d) for d in df.loc[df[f"enter_{side}"] == 1, "date"]}
            expected = {d for d in bt[(pair, side)] if lo <= d <= hi}
            assert live == expected, (pair, side, sorted(live ^ expected))
            signals += len(live)
    assert signals >= 1  # the stretch has signals to compare


def test_mark_candles_reach_the_engine_through_the_strategy(datadir: Path, tmp_path: Path):
    """15m mark candles in the datadir change the strategy's liq_* columns (the engine's default
    trigger is the mark range); without the mark file, or with ``trigger="last"``, they do not."""
    pair = PAIRS[0]
    no_mark = tmp_path / "binance"
    shutil.copytree(datadir, no_mark)
    dd.data_path(no_mark, pair, TIMEFRAME, "mark").unlink()
    cols = ["liq_long_total", "liq_short_total", "liq_long_cluster_price", "liq_imbalance"]
    tail = slice(-1000, None)
    with_mark = _batch(pair, datadir)[cols].iloc[tail].to_numpy(dtype=float)
    without = _batch(pair, no_mark)[cols].iloc[tail].to_numpy(dtype=float)
    assert not np.allclose(with_mark, without, equal_nan=True)
    last = _batch(pair, datadir, {"trigger": "last"})[cols].iloc[tail].to_numpy(dtype=float)
    last_no_mark = _batch(pair, no_mark, {"trigger": "last"})[cols].iloc[tail]
    np.testing.assert_array_equal(last, last_no_mark.to_numpy(dtype=float))


def test_the_synthetic_series_obey_the_layouts(tmp_path):
    datadir = enriched_datadir(tmp_path)
    found = {(p, tf, k) for p, tf, k in dd.list_data(datadir)}
    for pair in PAIRS:
        for kind in ("open_interest", "taker_volume", "long_short_ratio", "mark"):
            assert (pair, TIMEFRAME, kind) in found, (pair, kind)
    taker = dd.load_taker_volume(datadir, PAIRS[0], TIMEFRAME)
    candles = sample.load_candles(PAIRS[0], TIMEFRAME).set_index("date")
    vol = candles.loc[taker["date"], "volume"].to_numpy()
    assert (taker["taker_buy_volume"].to_numpy() <= vol).all()


@pytest.mark.slow
def test_the_series_fetcher_copies_what_the_replay_serves(datadir: Path, tmp_path: Path, caplog):
    """SeriesFetcher over ccxt against the replay: the bot's datadir gets the visible rows of
    open interest, taker volume and long/short ratio, on the served time axis; a venue that
    serves nothing of a kind is asked again only after IDLE_RETRY."""
    from liqsignals.live.series import FETCHED_KINDS, SeriesFetcher
    from liqsignals.replay.clock import HOUR_MS, LiveClock

    pair = PAIRS[0]
    end_ms = int(sample.load_candles(pair, TIMEFRAME)["date"].iloc[-1].value // 10**6) + TF_MS
    clock = LiveClock(end_ms - 6 * HOUR_MS, align_ms=HOUR_MS)
    with ReplayExchange(datadir, clock=clock) as ex:
        fetcher = SeriesFetcher(ex.freqtrade_overlay())
        now = pd.Timestamp.now(tz="UTC").floor("15min")
        first, last = now - pd.Timedelta("2D"), now - pd.Timedelta("15min")
        fetcher.refresh(pair, TIMEFRAME, tmp_path / "bot", first, last)
        offset = pd.Timedelta(milliseconds=clock.offset_ms)
        for kind in FETCHED_KINDS:
            got = dd.load_series(tmp_path / "bot", pair, TIMEFRAME, kind)
            stored = dd.load_series(datadir, pair, TIMEFRAME, kind)
            assert got["date"].iloc[-1] == last, kind  # the newest closed bar, nothing later
            assert got["date"].iloc[0] <= first, kind
            want = stored.assign(date=stored["date"] + offset).set_index("date").loc[got["date"]]
            np.testing.assert_allclose(got.set_index("date").to_numpy(), want.to_numpy())
        with caplog.at_level(logging.INFO, logger="liqsignals.live.series"):
            empty = SeriesFetcher(ex.freqtrade_overlay())
            empty.refresh("ETH/USDT:USDT", "5m", tmp_path / "bot", first, last)
        served = dict(ex.api.requests)
        mine = [r.getMessage() for r in caplog.records if r.name == "liqsignals.live.series"]
        assert [m.count("serves no") for m in mine] == [1] * 3, mine
        empty.refresh("ETH/USDT:USDT", "5m", tmp_path / "bot", first, last + pd.Timedelta("5min"))
        assert dict(ex.api.requests) == served  # not asked again within the hour


def test_incremental_analysis_with_every_input_equals_the_batch(datadir: Path):
    """The strategy's dry-run path fed one new candle at a time, as a bot's kline cache grows,
    with every input (mark and funding from the DataProvider, as far as visible at each candle;
    open interest, taker volume and long/short ratio from the datadir): each last row equals the
    batch (backtest) computation, with one build and one update per candle."""
    pair = PAIRS[0]
    candles = sample.load_candles(pair, TIMEFRAME)
    mark = dd.load_series(datadir, pair, TIMEFRAME, "mark")
    funding = dd.load_funding_rate(datadir, pair).rename(columns={"funding_rate": "open"})
    batch = _batch(pair, datadir).set_index("date")
    cols = [c for c in batch.columns if c.startswith("liq_")] + ["funding_rate"]
    strategy = load_strategy("LiqMagnetTrend", live=True, datadir=datadir)
    end0 = len(candles) - 40
    for end in range(end0, end0 + 25):
        frame = candles.iloc[end - LIVE_FRAME : end].reset_index(drop=True)
        now = frame["date"].iloc[-1] + pd.Timedelta(milliseconds=TF_MS)
        strategy.dp = LiveDP(
            {
                "mark": mark[mark["date"] + pd.Timedelta(milliseconds=TF_MS) <= now],
                "funding_rate": funding[funding["date"] <= now],
            }
        )
        out = strategy.populate_indicators(frame.copy(), {"pair": pair})
        last = out.iloc[-1]
        assert {"mark_high", "taker_buy_volume"}.isdisjoint(out.columns)  # inputs stay inside
        np.testing.assert_allclose(
            last[cols].to_numpy(dtype=float),
            batch.loc[last["date"], cols].to_numpy(dtype=float),
            **TOL,
            err_msg=str(last["date"]),
        )
    stats = strategy.liq_stream_stats(pair)
    assert stats.rebuilds == 1 and stats.updates == 24, stats
