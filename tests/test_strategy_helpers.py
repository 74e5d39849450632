"""The pieces of ``liqsignals.strategy``, each on its own: run mode, market data merges, the live
per-pair cache, stops, sizing, the joined ``liq_*`` block, the startup count, and the deprecated
``liqsignals.freqtrade`` path."""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from freqtrade.enums import RunMode

from liqsignals.strategy import LiqStrategy, cluster_stop_price, join_columns, liq_plot_config
from liqsignals.strategy import market_data as md
from liqsignals.strategy.live_cache import LiveFeatureCache, PairCache, unchanged_prefix
from liqsignals.strategy.sizing import capped_leverage, sized_stake
from liqsignals.strategy.stops import signal_row

ROOT = Path(__file__).resolve().parent.parent
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def candles(n: int, start: pd.Timestamp = T0) -> pd.DataFrame:
    dates = pd.date_range(start, periods=n, freq="15min")
    close = 100.0 + np.arange(n, dtype=float)
    return pd.DataFrame(
        {
            "date": dates,
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.full(n, 10.0),
        }
    )


class FakeDP:
    """The parts of freqtrade's DataProvider the helpers use."""

    def __init__(self, mode: RunMode = RunMode.BACKTEST, frames: dict | None = None) -> None:
        self.runmode = mode
        self.frames = frames or {}
        self.calls: list[tuple[str, str, str]] = []

    def get_pair_dataframe(self, pair: str, timeframe: str, candle_type: str = "") -> pd.DataFrame:
        self.calls.append((pair, timeframe, candle_type))
        found = self.frames.get(candle_type)
        if isinstance(found, Exception):
            raise found
        return pd.DataFrame() if found is None else found

    def current_whitelist(self) -> list[str]:
        return ["BTC/USDT:USDT", "ETH/USDT:USDT"]


# ----------------------------------------------------------------------------- run mode
def test_runmode_comes_from_the_data_provider_first():
    # the DataProvider's mode wins over a stale config entry
    assert md.runmode(FakeDP(RunMode.LIVE), {"runmode": "backtest"}) is RunMode.LIVE
    assert md.is_trading(FakeDP(RunMode.DRY_RUN), {})
    assert not md.is_trading(FakeDP(RunMode.HYPEROPT), {"runmode": "dry_run"})
    # without a DataProvider: the config entry, as freqtrade's enum (string or member)
    assert md.runmode(None, {"runmode": "dry_run"}) is RunMode.DRY_RUN
    assert md.runmode(None, {"runmode": RunMode.LIVE}) is RunMode.LIVE
    assert md.runmode(None, {}) is RunMode.OTHER
    assert not md.is_trading(None, {})
    with pytest.raises(ValueError, match="paper"):
        md.runmode(None, {"runmode": "paper"})


def test_live_market_data_is_opt_in():
    assert not md.live_market_data({})
    assert not md.live_market_data({"liqsignals": None})
    assert md.live_market_data({"liqsignals": {"live_open_interest": True}})


# ----------------------------------------------------------------------------- market data
def test_candle_inputs_are_a_copy_of_the_candle_columns():
    frame = candles(4).assign(rsi=1.0, open_interest=5.0)
    inputs = md.candle_inputs(frame)
    assert list(inputs.columns) == ["date", "open", "high", "low", "close", "volume"]
    inputs.loc[0, "close"] = -1.0
    assert frame.loc[0, "close"] == 100.0
    with pytest.raises(ValueError, match="volume"):
        md.candle_inputs(frame.drop(columns="volume"))


def test_open_interest_is_matched_by_date_amount_first():
    inputs = md.candle_inputs(candles(4))
    dates = inputs["date"]
    oi = pd.DataFrame(
        {
            "date": [dates[1], dates[2], dates[3]],
            "open_interest_amount": [7.0, np.nan, 9.0],
            "open_interest_value": [70.0, 80.0, 90.0],
        }
    )
    out = md.attach_open_interest(inputs, oi)
    assert out is inputs
    np.testing.assert_array_equal(out["open_interest"], [np.nan, 7.0, np.nan, 9.0])
    assert "open_interest_value" not in out


def test_open_interest_value_when_no_amount_is_known():
    inputs = md.candle_inputs(candles(3))
    oi = pd.DataFrame(
        {"date": inputs["date"], "open_interest_amount": np.nan, "open_interest_value": [1, 2, 3]}
    )
    out = md.attach_open_interest(inputs, oi)
    np.testing.assert_array_equal(out["open_interest_value"], [1.0, 2.0, 3.0])
    assert "open_interest" not in out
    empty = md.candle_inputs(candles(3))
    md.attach_open_interest(empty, oi.assign(open_interest_value=np.nan))
    md.attach_open_interest(empty, None)
    assert list(empty.columns) == ["date", "open", "high", "low", "close", "volume"]


def test_funding_is_the_latest_event_at_or_before_each_candle():
    inputs = md.candle_inputs(candles(40, start=T0 - pd.Timedelta("15min")))
    fr = pd.DataFrame(  # freqtrade's funding frames carry the rate in "open"; unsorted here
        {"date": [T0 + pd.Timedelta("8h"), T0], "open": [0.0002, 0.0001], "close": [0, 0]}
    )
    out = md.attach_funding(inputs, fr)["funding_rate"].to_numpy()
    assert np.isnan(out[0])  # 23:45, before the first event
    assert out[1] == 0.0001  # 00:00, the event's own timestamp
    assert out[32] == 0.0001  # 07:45
    assert out[33] == 0.0002  # 08:00
    named = md.attach_funding(
        md.candle_inputs(candles(2)), pd.DataFrame({"date": [T0], "funding_rate": [0.003]})
    )
    assert named["funding_rate"].tolist() == [0.003, 0.003]


def test_informative_frame_failures_give_none_and_warn_once(caplog):
    dp = FakeDP(frames={"open_interest": KeyError("no such candle type")})
    warned: set[tuple[str, str]] = set()
    with caplog.at_level(logging.WARNING, logger="liqsignals.strategy.market_data"):
        for _ in range(3):
            assert md.informative_frame(dp, "X/USDT:USDT", "15m", "open_interest", warned) is None
    assert [r.getMessage().count("open_interest") for r in caplog.records] == [1]
    assert warned == {("X/USDT:USDT", "open_interest")}
    assert md.informative_frame(FakeDP(), "X/USDT:USDT", "1h", "funding_rate", warned) is None


def test_market_inputs_merge_what_the_data_provider_has():
    frame = candles(3)
    oi = pd.DataFrame({"date": frame["date"], "open_interest_amount": [1.0, 2.0, 3.0]})
    fr = pd.DataFrame({"date": [T0], "open": [0.0005]})
    dp = FakeDP(frames={"open_interest": oi, "funding_rate": fr})
    out = md.market_inputs(frame, dp, "BTC/USDT:USDT", "15m", set())
    assert dp.calls == [
        ("BTC/USDT:USDT", "15m", "open_interest"),
        ("BTC/USDT:USDT", "1h", "funding_rate"),
        ("BTC/USDT:USDT", "15m", "mark"),
    ]
    assert out["open_interest"].tolist() == [1.0, 2.0, 3.0]
    assert out["funding_rate"].tolist() == [0.0005] * 3
    assert "open_interest" not in frame


# ----------------------------------------------------------------------------- live cache
def _cache(dates: list[int], values: list[float], columns=("close",)) -> PairCache:
    arr = np.asarray(values, dtype=float).reshape(-1, 1)
    return PairCache(None, arr, ["f"], np.asarray(dates, dtype=np.int64), arr, columns)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stamps", "values", "columns", "want"),
    [
        ([2, 3, 4, 5], [20, 30, 40, 50], ("close",), 3),  # one new candle, one dropped in front
        ([1, 2, 3, 4], [10, 20, 30, 40], ("close",), 4),  # the same frame
        ([3, 4, 5, 6], [30, 40, 50, 60], ("close",), 2),  # two new candles
        ([2, 3, 4, 5], [20, 31, 40, 50], ("close",), -1),  # a seen candle changed
        ([2, 4, 5], [20, 40, 50], ("close",), -1),  # a seen candle went missing
        ([0, 1, 2, 3, 4], [0, 10, 20, 30, 40], ("close",), -1),  # older than the start
        ([1, 2, 3], [10, 20, 30], ("close",), -1),  # ends before the last seen candle
        ([5, 6], [50, 60], ("close",), -1),  # no common candle
        ([2, 3, 4, 5], [20, 30, 40, 50], ("open",), -1),  # other input columns
    ],
)
def test_unchanged_prefix(stamps, values, columns, want):
    cache = _cache([1, 2, 3, 4], [10, 20, 30, 40])
    got = unchanged_prefix(
        cache,
        np.asarray(stamps, dtype=np.int64),
        np.asarray(values, dtype=float).reshape(-1, 1),
        columns,
    )
    assert got == want


class FakeStream:
    """A stream whose feature is close x 2, recording what it was fed."""

    columns = ["double_close"]

    def __init__(self) -> None:
        self.fed: list[int] = []

    def update_arrays(self, stamps: np.ndarray, cols: dict[str, np.ndarray]) -> np.ndarray:
        if np.isnan(cols["close"]).any():
            raise ValueError("column 'close' has NaN")
        self.fed.append(len(stamps))
        return (2.0 * cols["close"]).reshape(-1, 1)


def test_live_cache_feeds_only_new_candles_and_rebuilds_on_change():
    cache, streams = LiveFeatureCache(), []

    def build() -> FakeStream:
        streams.append(FakeStream())
        return streams[-1]

    frame = candles(6)
    names, values = cache.features("P", frame.iloc[:4], build)
    assert names == ["double_close"] and values[:, 0].tolist() == [200, 202, 204, 206]
    values[:] = -1.0  # the caller's copy: the cache keeps its own rows
    _, values = cache.features("P", frame.iloc[1:6].reset_index(drop=True), build)
    assert values[:, 0].tolist() == [202, 204, 206, 208, 210]
    assert streams[0].fed == [4, 2] and len(streams) == 1
    _, again = cache.features("P", frame.iloc[1:6].reset_index(drop=True), build)
    np.testing.assert_array_equal(again, values)
    stats = cache.stats("P")
    assert (stats.rebuilds, stats.updates, stats.unchanged, stats.candles_fed) == (1, 1, 1, 6)
    changed = frame.iloc[1:6].reset_index(drop=True)
    changed.loc[2, "close"] = 0.0
    _, values = cache.features("P", changed, build)
    assert len(streams) == 2 and streams[1].fed == [5] and values[2, 0] == 0.0
    assert cache.stats("P").last_mode == "rebuild" and cache.stats("Q") is None


def test_live_cache_reads_candles_alone_when_asked():
    cache = LiveFeatureCache()
    seen: list[list[str]] = []

    class Recording(FakeStream):
        def update_arrays(self, stamps, cols):
            seen.append(sorted(cols))
            return super().update_arrays(stamps, cols)

    frame = candles(3).assign(open_interest=1.0, rsi=50.0)
    cache.features("P", frame, Recording, candles_only=True)
    cache.features("R", frame, Recording)
    assert seen[0] == ["close", "high", "low", "open", "volume"]
    assert seen[1] == ["close", "high", "low", "open", "open_interest", "volume"]


def test_live_cache_drops_the_stream_after_an_invalid_candle():
    cache, streams = LiveFeatureCache(), []

    def build() -> FakeStream:
        streams.append(FakeStream())
        return streams[-1]

    frame = candles(5)
    cache.features("P", frame.iloc[:3], build)
    bad = frame.iloc[:4].copy()
    bad.loc[3, "close"] = np.nan
    with pytest.raises(ValueError, match="close"):
        cache.features("P", bad, build)
    _, values = cache.features("P", frame, build)
    assert len(streams) == 2 and streams[1].fed == [5] and values.shape == (5, 1)


# ----------------------------------------------------------------------------- stops and sizing
def test_cluster_stop_price():
    row = {"liq_long_cluster_low": 100.0, "liq_short_cluster_high": 110.0, "liq_atr": 2.0}
    assert cluster_stop_price(row, "long", 1.5) == pytest.approx(97.0)
    assert cluster_stop_price(row, "short", 1.5) == pytest.approx(113.0)
    assert cluster_stop_price({**row, "liq_long_cluster_low": np.nan}, "long", 1.0) is None
    assert cluster_stop_price({"liq_atr": 2.0}, "short", 1.0) is None  # no cluster column
    assert cluster_stop_price({**row, "liq_long_cluster_low": 1.0}, "long", 1.0) is None  # <= 0
    with pytest.raises(ValueError, match="'up'"):
        cluster_stop_price(row, "up", 1.0)


def test_signal_row_is_the_last_candle_closed_before_the_entry():
    df = candles(5)  # 00:00 .. 01:00
    row = signal_row(df, (T0 + pd.Timedelta("45min")).to_pydatetime(), "15m")
    assert row is not None and row["date"] == T0 + pd.Timedelta("30min")
    row = signal_row(df, (T0 + pd.Timedelta("40min")).to_pydatetime(), "15m")
    assert row is not None and row["date"] == T0 + pd.Timedelta("15min")
    assert signal_row(df, (T0 + pd.Timedelta("10min")).to_pydatetime(), "15m") is None


def test_sized_stake_and_leverage_cap():
    assert sized_stake(100.0, 0.5, None, 1000.0) == 50.0
    assert sized_stake(100.0, 0.5, 60.0, 1000.0) == 60.0  # raised to the minimum
    assert sized_stake(100.0, 1.0, None, 80.0) == 80.0  # capped at the maximum
    assert capped_leverage(3.0, 125.0) == 3.0
    assert capped_leverage(3.0, 2.0) == 2.0


# ----------------------------------------------------------------------------- signals
def test_join_columns_replaces_adds_tags_and_funding():
    frame = candles(3).assign(liq_a=9.0)
    values = np.arange(6, dtype=float).reshape(3, 2)
    out = join_columns(frame, ["liq_a", "liq_b"], values, pd.Series([0.1, 0.2, 0.3]))
    assert out["liq_a"].tolist() == [0.0, 2.0, 4.0] and out["liq_b"].tolist() == [1.0, 3.0, 5.0]
    assert list(out.columns).count("liq_a") == 1
    assert out["enter_tag"].isna().all() and out["exit_tag"].isna().all()
    assert out["funding_rate"].tolist() == [0.1, 0.2, 0.3]
    assert out.columns.dtype == object
    assert frame["liq_a"].tolist() == [9.0] * 3  # the input frame is left alone
    tagged = join_columns(frame.assign(enter_tag="x"), ["liq_b"], values[:, :1])
    assert tagged["enter_tag"].tolist() == ["x"] * 3 and "funding_rate" not in tagged
    with pytest.raises(ValueError, match="shape"):
        join_columns(frame, ["liq_a"], values)


def test_plot_config_extra_entries():
    config = liq_plot_config({"subplots": {"RSI": {"rsi": {}}}, "main_plot": {"ema": {}}})
    assert {"RSI", "Estimated liquidations", "Imbalance"} <= set(config["subplots"])
    assert {"ema", "liq_magnet_price"} <= set(config["main_plot"])
    assert "RSI" not in liq_plot_config()["subplots"]  # no shared state between calls


# ----------------------------------------------------------------------------- settings
def test_pair_model_and_lookbacks_from_the_settings():
    from liqsignals.strategy.settings import feature_kwargs, pair_model, strategy_startup

    btc = pair_model("BTC/USDT:USDT", "1d", "all", {})
    assert btc.symbol == "BTC/USDT:USDT" and btc.window == pd.Timedelta("1D")
    other = pair_model("NOPE/USDT:USDT", "1w", "all", {"gap_factor": 2.0})
    assert other.symbol is None and other.gap_factor == 2.0  # generic tiers, fields passed on
    assert feature_kwargs(300) == {
        "atr_period": 14,
        "intensity_lookback": 300,
        "drift_lookback": 12,
    }
    settings = SimpleNamespace(liq_window="2d", liq_intensity_lookback=100)
    assert strategy_startup(settings, "1h") == 48 + 100 + 10


# ----------------------------------------------------------------------------- LiqStrategy
class Plain(LiqStrategy):
    timeframe = "15m"

    def populate_indicators(self, dataframe, metadata):
        return self.liq_populate(dataframe, metadata)

    def populate_entry_trend(self, dataframe, metadata):
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        return dataframe


class Daily(Plain):
    liq_window = "1d"


class Explicit(Plain):
    startup_candle_count = 2000


class DailyOfExplicit(Explicit):
    liq_window = "1d"


def test_startup_count_follows_each_subclass_window():
    assert Plain.startup_candle_count == 7 * 96 + 500 + 10
    assert Daily.startup_candle_count == 96 + 500 + 10
    assert Explicit.startup_candle_count == 2000  # set in the class body: kept
    assert DailyOfExplicit.startup_candle_count == 96 + 500 + 10
    assert Daily({}).startup_candle_count == 606 and Explicit({}).startup_candle_count == 2000
    # the config's window and timeframe (applied by freqtrade after construction) count too
    weekly = Daily({"liqsignals": {"window": "1w"}})
    assert weekly.liq_window == "1w" and weekly.startup_candle_count == 1182
    assert weekly.liq_model("X/USDT:USDT").window == pd.Timedelta("7D")
    assert Daily.liq_window == "1d"  # the class is unchanged
    assert Daily({"timeframe": "1h"}).startup_candle_count == 24 + 500 + 10


DAILY_FILE = """
from liqsignals.strategy import LiqStrategy


class LiqDailyTest(LiqStrategy):
    timeframe = "15m"
    can_short = True
    stoploss = -0.1
    liq_window = "__WINDOW__"

    def populate_indicators(self, dataframe, metadata):
        return self.liq_populate(dataframe, metadata)

    def populate_entry_trend(self, dataframe, metadata):
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        return dataframe
"""


def _resolve(tmp_path: Path, window: str, **extra):
    from freqtrade.configuration import Configuration
    from freqtrade.resolvers import StrategyResolver

    folder = tmp_path / window
    folder.mkdir(parents=True)
    (folder / "LiqDailyTest.py").write_text(DAILY_FILE.replace("__WINDOW__", window))
    args = {
        "config": [str(ROOT / "config" / "futures.json")],
        "user_data_dir": str(tmp_path),
        "strategy": "LiqDailyTest",
        "strategy_path": str(folder),
    }
    config = Configuration(args, RunMode.BACKTEST).get_config()
    config.update(extra)
    return StrategyResolver.load_strategy(config)


@pytest.mark.parametrize(("window", "count"), [("1d", 606), ("1w", 1182)])
def test_startup_count_through_freqtrades_resolver(tmp_path, window, count):
    strategy = _resolve(tmp_path, window)
    assert strategy.startup_candle_count == count
    assert strategy.config["startup_candle_count"] == count  # what freqtrade loads data with


def test_a_configured_startup_count_still_wins(tmp_path):
    strategy = _resolve(tmp_path, "1d", startup_candle_count=3000)
    assert strategy.startup_candle_count == 3000
    strategy = _resolve(tmp_path / "x", "1d", liqsignals={"window": "2d"})
    assert strategy.startup_candle_count == 2 * 96 + 500 + 10


def test_the_live_path_is_chosen_by_the_data_providers_runmode():
    strategy = Daily({"runmode": "backtest"})
    frame = candles(200)
    strategy.dp = FakeDP(RunMode.DRY_RUN)
    assert strategy.liq_live()
    strategy.populate_indicators(frame.copy(), {"pair": "X/USDT:USDT"})
    stats = strategy.liq_stream_stats("X/USDT:USDT")
    assert stats is not None and stats.rebuilds == 1
    # every input in every run mode, no opt-in
    assert [c for _, _, c in strategy.dp.calls] == ["open_interest", "funding_rate", "mark"]
    assert strategy.informative_pairs() == [
        (pair, tf, kind)
        for pair in ("BTC/USDT:USDT", "ETH/USDT:USDT")
        for tf, kind in (("15m", "mark"), ("1h", "funding_rate"))
    ]
    batch = Daily({"runmode": "dry_run"})
    batch.dp = FakeDP(RunMode.BACKTEST)
    assert not batch.liq_live()
    out = batch.populate_indicators(frame.copy(), {"pair": "X/USDT:USDT"})
    assert batch.liq_stream_stats("X/USDT:USDT") is None
    assert [c for _, _, c in batch.dp.calls] == ["open_interest", "funding_rate", "mark"]
    assert out["liq_long_total"].iloc[96:].notna().all()


def test_stake_and_stop_callbacks_read_the_analysed_frame():
    strategy = Daily({})
    last = candles(2).assign(
        liq_intensity_bucket=3.0,
        liq_long_cluster_dist_atr=-1.0,
        liq_short_cluster_dist_atr=9.0,
        liq_long_cluster_low=95.0,
        liq_short_cluster_high=np.nan,
        liq_atr=2.0,
    )
    strategy.dp = SimpleNamespace(get_analyzed_dataframe=lambda pair, tf: (last, None))
    stake = strategy.custom_stake_amount("P", None, 1.0, 100.0, 10.0, 500.0, 3.0, None, "long")
    assert stake == 50.0  # extreme cluster 1 ATR below a long
    assert (
        strategy.custom_stake_amount("P", None, 1.0, 100.0, 10.0, 500.0, 3.0, None, "short")
        == 100.0
    )
    trade = SimpleNamespace(is_short=False, leverage=1.0)
    # stop at 95 - 1 x 2 = 93 below a rate of 100: 7 % of the price
    assert strategy.liq_cluster_stop("P", trade, 100.0) == pytest.approx(0.07)
    assert (
        strategy.liq_cluster_stop("P", SimpleNamespace(is_short=True, leverage=1.0), 100.0) is None
    )


# ----------------------------------------------------------------------------- old import path
NAMES = [
    "LiqStrategy",
    "LiqStreamStats",
    "column_arrays",
    "liq_plot_config",
    "set_signals",
    "stake_factor",
    "startup_candles",
    "stop_beyond",
]


@pytest.mark.parametrize("name", NAMES)
def test_old_names_still_import_with_a_deprecation_warning(name):
    new = importlib.import_module("liqsignals.strategy")
    with pytest.warns(DeprecationWarning, match=r"liqsignals\.strategy"):
        old = importlib.import_module("liqsignals.freqtrade")
        value = getattr(old, name)
    assert value is getattr(new, name)


def test_importing_the_old_module_warns_and_unknown_names_fail():
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import liqsignals.freqtrade\n"
        "    from liqsignals.freqtrade import LiqStrategy\n"
        "print(len(caught), all(w.category is DeprecationWarning for w in caught))\n"
        "print(all('liqsignals.strategy' in str(w.message) for w in caught))\n"
        "try:\n"
        "    liqsignals.freqtrade.nothing_here\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "2 True",
        "True",
        "module 'liqsignals.freqtrade' has no attribute 'nothing_here'",
    ]
