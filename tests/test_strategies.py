"""Shipped strategies: they load as freqtrade loads them, trade on BTC and ETH offline, and pass
freqtrade's own lookahead-analysis and recursive-analysis."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqsignals import sample
from liqsignals.strategy import stake_factor, startup_candles, stop_beyond

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = [
    "LiqSweepReversal",
    "LiqSweepReversalFixedStop",
    "LiqMagnetTrend",
    "LiqMagnetTrendFixedStop",
]


def _run(argv: list[str], tmp_path: Path) -> str:
    from liqsignals.replay.offline import run_offline

    base = [
        sys.executable, "-m", "freqtrade", argv[0],
        "-c", str(ROOT / "config" / "futures.json"), "-c", "{overlay}",
        "--strategy-path", str(ROOT / "strategies"),
        "--datadir", str(sample.datadir()), "--userdir", str(tmp_path / "user_data"),
        "--timeframe", "15m",
    ]  # fmt: skip
    (tmp_path / "user_data").mkdir(exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_offline(base + argv[1:], datadir=sample.datadir())
    assert result.returncode == 0, result.output[-3000:]
    return result.output


# ----------------------------------------------------------------------------- helpers
def test_startup_candles_cover_window_and_lookback():
    assert startup_candles("1w", "15m", intensity_lookback=500, margin=10) == 7 * 96 + 500 + 10
    assert startup_candles("1d", "1h", intensity_lookback=100, margin=0) == 124


def test_stop_beyond_and_stake_factor():
    assert stop_beyond(100.0, 2.0, "long", 1.5) == pytest.approx(97.0)
    assert stop_beyond(100.0, 2.0, "short", 1.5) == pytest.approx(103.0)
    assert np.isnan(stop_beyond(np.nan, 2.0, "long", 1.0))
    with pytest.raises(ValueError):
        stop_beyond(1.0, 1.0, "up", 1.0)
    assert stake_factor(3, 1.0) == 0.5
    assert stake_factor(2, -2.0) == 0.75
    assert stake_factor(1, 1.0) == 1.0
    assert stake_factor(3, 10.0) == 1.0
    assert stake_factor(np.nan, 1.0) == 1.0


def test_no_parameter_files_override_defaults():
    assert not list((ROOT / "strategies").glob("*.json"))


# ----------------------------------------------------------------------------- loading
def load_strategy(name: str, tmp_path: Path):
    """Load a strategy as the bot does: freqtrade's Configuration, then StrategyResolver."""
    from freqtrade.configuration import Configuration
    from freqtrade.enums import RunMode
    from freqtrade.resolvers import StrategyResolver

    args = {
        "config": [str(ROOT / "config" / "futures.json")],
        "user_data_dir": str(tmp_path),
        "datadir": str(sample.datadir()),
        "strategy": name,
        "strategy_path": str(ROOT / "strategies"),
    }
    config = Configuration(args, RunMode.BACKTEST).get_config()
    return StrategyResolver.load_strategy(config)


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_loads_through_resolver(name, tmp_path):
    strategy = load_strategy(name, tmp_path)
    assert type(strategy).__name__ == name
    assert strategy.can_short and strategy.timeframe == "15m"
    assert strategy.startup_candle_count == startup_candles(strategy.liq_window, "15m")
    assert strategy.leverage("BTC/USDT:USDT", None, 1.0, 1.0, 125.0, None, "long") == 3.0
    assert strategy.leverage("BTC/USDT:USDT", None, 1.0, 1.0, 2.0, None, "long") == 2.0
    plot = strategy.plot_config
    assert "liq_magnet_price" in plot["main_plot"]
    assert "Estimated liquidations" in plot["subplots"]


def test_strategy_columns_on_sample_frame(tmp_path):
    """populate_indicators adds every liq_* column, NaN only in warm-up."""
    from liqsignals import COLUMNS

    strategy = load_strategy("LiqSweepReversal", tmp_path)
    df = sample.load_candles("BTC/USDT:USDT", "15m").iloc[:3000].copy()
    out = strategy.populate_indicators(df, {"pair": "BTC/USDT:USDT"})
    for col in COLUMNS:
        assert col in out.columns
    assert out["liq_long_total"].iloc[: 7 * 96].isna().all()
    assert out["liq_long_total"].iloc[7 * 96 :].notna().all()


def test_sweep_reversal_signals_equal_a_plain_pandas_reference(tmp_path):
    """The strategy's numpy conditions and compiled RSI / volume mean give the same entries as
    the textbook pandas + ta formulation of its rules, written out here independently."""
    import ta

    strategy = load_strategy("LiqSweepReversal", tmp_path)
    df = sample.load_candles("BTC/USDT:USDT", "15m").reset_index(drop=True)
    meta = {"pair": "BTC/USDT:USDT"}
    out = strategy.advise_entry(strategy.advise_indicators(df.copy(), meta), meta)
    rsi = ta.momentum.RSIIndicator(close=out["close"], window=14).rsi()
    loud = (out["volume"] > 0) & (
        out["volume"] >= strategy.volume_factor.value * out["volume"].rolling(48).mean()
    )
    long_ref = (
        loud
        & (out["liq_sweep_long"] == 1)
        & (rsi <= strategy.rsi_long_max.value)
        & out["liq_short_cluster_price"].notna()
    )
    short_ref = (
        loud
        & (out["liq_sweep_short"] == 1)
        & (rsi >= strategy.rsi_short_min.value)
        & out["liq_long_cluster_price"].notna()
    )
    assert long_ref.sum() > 10 and short_ref.sum() > 10  # the comparison has signals to compare
    np.testing.assert_array_equal(out["enter_long"].to_numpy(), long_ref.astype(int).to_numpy())
    np.testing.assert_array_equal(out["enter_short"].to_numpy(), short_ref.astype(int).to_numpy())
    tags = out["enter_tag"].to_numpy()
    assert set(tags[long_ref.to_numpy()]) == {"sweep_long"}
    assert set(tags[short_ref.to_numpy() & ~long_ref.to_numpy()]) == {"sweep_short"}


def test_column_arrays_and_set_signals_with_arrays():
    from liqsignals.strategy import column_arrays, set_signals

    df = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [0, 1, 2]})
    col = column_arrays(df, "a", "b")
    assert col.b.dtype == np.float64
    np.testing.assert_array_equal(col.a > 1, [False, False, True])
    with pytest.raises(KeyError, match="'c'"):
        column_arrays(df, "a", "c")
    set_signals(df, np.array([1.0, np.nan, 0.0]), np.array([True, True, False]), "up", "down")
    assert df["enter_long"].tolist() == [1, 0, 0]
    assert df["enter_short"].tolist() == [1, 1, 0]
    assert df["enter_tag"].tolist() == ["up", "down", None]
    with pytest.raises(ValueError, match="shape"):
        set_signals(df, np.array([True]), np.array([True, True, False]), "up", "down")


# ----------------------------------------------------------------------------- live path
def test_live_incremental_matches_batch(tmp_path):
    """In dry-run the mixin updates one engine per pair with new candles only; the columns equal
    the batch computation on the same frame (exactly while the frame grows, and to rounding once
    freqtrade's window rolls forward)."""
    strategy = load_strategy("LiqMagnetTrend", tmp_path)
    batch_strategy = load_strategy("LiqMagnetTrend", tmp_path)
    strategy.config["runmode"] = "dry_run"
    assert strategy.config is not batch_strategy.config
    df = sample.load_candles("ETH/USDT:USDT", "15m").iloc[:2200].reset_index(drop=True)
    cols = None
    for end in (1500, 1501, 1502, 1510):  # growing frame
        live = strategy.populate_indicators(df.iloc[:end].copy(), {"pair": "ETH/USDT:USDT"})
        batch = batch_strategy.populate_indicators(df.iloc[:end].copy(), {"pair": "ETH/USDT:USDT"})
        cols = [c for c in live.columns if c.startswith("liq_")]
        np.testing.assert_array_equal(live[cols].to_numpy(), batch[cols].to_numpy())
    for start in (10, 11, 20):  # rolling frame of 1500 candles
        frame = df.iloc[start : start + 1500].reset_index(drop=True)
        live = strategy.populate_indicators(frame.copy(), {"pair": "ETH/USDT:USDT"})
        batch = batch_strategy.populate_indicators(frame.copy(), {"pair": "ETH/USDT:USDT"})
        tail = slice(-200, None)
        np.testing.assert_allclose(
            live[cols].iloc[tail].to_numpy(dtype=float),
            batch[cols].iloc[tail].to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-9,
        )
    # history rewritten (e.g. a restart with corrected candles): the engine is rebuilt
    changed = df.iloc[20:1520].reset_index(drop=True).copy()
    changed.loc[1499, "close"] = changed.loc[1499, "close"] * 1.001
    changed.loc[1499, "high"] = max(changed.loc[1499, "high"], changed.loc[1499, "close"])
    live = strategy.populate_indicators(changed.copy(), {"pair": "ETH/USDT:USDT"})
    batch = batch_strategy.populate_indicators(changed.copy(), {"pair": "ETH/USDT:USDT"})
    np.testing.assert_array_equal(live[cols].to_numpy(), batch[cols].to_numpy())


# ----------------------------------------------------------------------------- offline backtests
@pytest.mark.slow
def test_every_strategy_backtests_with_trades_on_btc_and_eth(tmp_path):
    out = _run(
        ["backtesting", "--strategy-list", *STRATEGIES, "--timerange", "20250101-20250531",
         "--export", "trades", "--cache", "none"],
        tmp_path,
    )  # fmt: skip
    assert "STRATEGY SUMMARY" in out
    results = tmp_path / "user_data" / "backtest_results"
    latest = results / json.loads((results / ".last_result.json").read_text())["latest_backtest"]
    with zipfile.ZipFile(latest) as zf:
        data = json.loads(zf.read(latest.with_suffix(".json").name))
    for name in STRATEGIES:
        trades = pd.DataFrame(data["strategy"][name]["trades"])
        assert len(trades) > 0, name
        assert set(trades["pair"]) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}, name
        assert (trades["leverage"] <= 3.0).all()
        assert trades["is_short"].any() and (~trades["is_short"]).any(), name


@pytest.mark.slow
@pytest.mark.parametrize("name", STRATEGIES)
def test_lookahead_analysis_finds_no_bias(name, tmp_path):
    out = _run(
        ["lookahead-analysis", "-s", name, "--timerange", "20250101-20250401",
         "--minimum-trade-amount", "5", "--targeted-trade-amount", "8"],
        tmp_path,
    )  # fmt: skip
    assert f"{name}: no bias detected" in out
    rows = [[c.strip() for c in line.split("│")] for line in out.splitlines() if "│" in line]
    cells = next(r for r in rows if len(r) > 3 and r[2] == name)  # file │ strategy │ has_bias
    assert cells[3] == "No"  # has_bias
    assert int(cells[4]) >= 5  # total signals checked


@pytest.mark.slow
@pytest.mark.parametrize("name", STRATEGIES)
def test_recursive_analysis_below_threshold_at_startup(name, tmp_path):
    out = _run(["recursive-analysis", "-s", name, "--timerange", "20250101-20250201"], tmp_path)
    lines = out.splitlines()
    header = next(line for line in lines if "Indicators" in line and "from strategy" in line)
    heads = [c.strip() for c in header.split("┃")]
    col = next(i for i, c in enumerate(heads) if "from strategy" in c)
    checked = 0
    for line in lines:
        cells = [c.strip() for c in line.split("│")]
        if len(cells) == len(heads) and cells[1].startswith("liq_"):
            value = cells[col]
            if value != "-":
                assert abs(float(value.rstrip("%"))) < 0.1, (cells[1], value)
            checked += 1
    assert checked >= 30
    assert re.search(r"startup candle of \d+", out)


@pytest.mark.slow
def test_parallel_hyperopt_runs(tmp_path):
    """freqtrade pickles the strategy for its hyperopt workers (-j 2); a strategy with a mixin
    base fails there, which is why the strategies derive from LiqStrategy alone."""
    out = _run(
        ["hyperopt", "-s", "LiqSweepReversal", "--timerange", "20250101-20250301",
         "--spaces", "buy", "--hyperopt-loss", "SharpeHyperOptLossDaily", "-e", "4", "-j", "2",
         "--disable-param-export", "--random-state", "1"],
        tmp_path,
    )  # fmt: skip
    assert "Best result" in out or "No good result found" in out
    assert "PicklingError" not in out
    assert not list((ROOT / "strategies").glob("*.json"))  # nothing exported next to them
