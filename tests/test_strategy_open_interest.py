"""A strategy reads open interest through freqtrade's own data provider (candle type
``open_interest``) in a backtest, and runs on candles alone when the file is absent."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqsignals import liquidation_features, sample

ROOT = Path(__file__).resolve().parent.parent
PAIR = "BTC/USDT:USDT"


def _datadir_with_open_interest(tmp_path: Path) -> Path:
    """The bundled sample plus a BTC 15m open-interest file in freqtrade 2026.9's layout."""
    datadir = tmp_path / "binance"
    shutil.copytree(sample.datadir(), datadir)
    candles = sample.load_candles(PAIR, "15m")
    rng = np.random.default_rng(7)
    oi = 80_000 * np.exp(np.cumsum(rng.normal(0, 0.002, len(candles))))
    pd.DataFrame(
        {
            "date": candles["date"],
            "open_interest_amount": oi,
            "open_interest_value": oi * candles["close"].to_numpy(),
        }
    ).to_feather(datadir / "futures" / "BTC_USDT_USDT-15m-open_interest.feather")
    return datadir


def _strategy(datadir: Path, tmp_path: Path, name: str = "LiqMagnetTrend"):
    from freqtrade.configuration import Configuration
    from freqtrade.data.dataprovider import DataProvider
    from freqtrade.enums import RunMode
    from freqtrade.resolvers import StrategyResolver

    args = {
        "config": [str(ROOT / "config" / "futures.json")],
        "user_data_dir": str(tmp_path / "user_data"),
        "datadir": str(datadir),
        "strategy": name,
        "strategy_path": str(ROOT / "strategies"),
        "timeframe": "15m",
    }
    (tmp_path / "user_data").mkdir(exist_ok=True)
    config = Configuration(args, RunMode.BACKTEST).get_config()
    config.setdefault("dataformat_ohlcv", "feather")  # set by freqtrade's argument defaults
    strategy = StrategyResolver.load_strategy(config)
    strategy.dp = DataProvider(config, None)
    return strategy


def test_open_interest_file_reaches_the_engine_through_the_data_provider(tmp_path):
    datadir = _datadir_with_open_interest(tmp_path)
    strategy = _strategy(datadir, tmp_path)
    candles = sample.load_candles(PAIR, "15m").iloc[:4000].reset_index(drop=True)
    got = strategy.populate_indicators(candles.copy(), {"pair": PAIR})
    oi = pd.read_feather(datadir / "futures" / "BTC_USDT_USDT-15m-open_interest.feather")
    with_oi = candles.assign(open_interest=oi["open_interest_amount"].iloc[:4000].to_numpy())
    expected = liquidation_features(with_oi, strategy.liq_model(PAIR))
    cols = list(expected.columns)
    np.testing.assert_array_equal(got[cols].to_numpy(), expected[cols].to_numpy())
    candles_only = liquidation_features(candles, strategy.liq_model(PAIR))
    assert not np.allclose(
        got["liq_long_total"].dropna(), candles_only["liq_long_total"].dropna(), rtol=1e-3
    )


def test_without_open_interest_the_strategy_runs_on_candles(tmp_path):
    strategy = _strategy(sample.datadir(), tmp_path)
    candles = sample.load_candles(PAIR, "15m").iloc[:3000].reset_index(drop=True)
    got = strategy.populate_indicators(candles.copy(), {"pair": PAIR})
    expected = liquidation_features(candles, strategy.liq_model(PAIR))
    np.testing.assert_array_equal(got[list(expected.columns)].to_numpy(), expected.to_numpy())
    # a backtest reads the files through the DataProvider; only a bot declares informative pairs
    assert strategy.informative_pairs() == []


def _backtest(datadir: Path, tmp_path: Path) -> tuple[str, pd.DataFrame]:
    from liqsignals.replay.offline import run_offline

    userdir = tmp_path / "ud"
    userdir.mkdir(parents=True)
    cmd = [
        sys.executable, "-m", "freqtrade", "backtesting",
        "-c", str(ROOT / "config" / "futures.json"), "-c", "{overlay}",
        "--strategy-path", str(ROOT / "strategies"), "-s", "LiqMagnetTrend",
        "--datadir", str(datadir), "--userdir", str(userdir), "--timeframe", "15m",
        "--timerange", "20250101-20250401", "--export", "trades", "--cache", "none",
        "--pairs", PAIR,
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        res = run_offline(cmd, datadir=datadir)
    assert res.returncode == 0, res.output[-3000:]
    results = userdir / "backtest_results"
    latest = results / json.loads((results / ".last_result.json").read_text())["latest_backtest"]
    with zipfile.ZipFile(latest) as zf:
        data = json.loads(zf.read(latest.with_suffix(".json").name))
    return res.output, pd.DataFrame(data["strategy"]["LiqMagnetTrend"]["trades"])


@pytest.mark.slow
def test_backtest_uses_the_open_interest_file(tmp_path):
    with_oi = _datadir_with_open_interest(tmp_path)
    out_oi, trades_oi = _backtest(with_oi, tmp_path / "a")
    out_plain, trades_plain = _backtest(sample.datadir(), tmp_path / "b")
    assert "No history for BTC/USDT:USDT, open_interest" in out_plain
    assert "No history for BTC/USDT:USDT, open_interest" not in out_oi
    assert len(trades_oi) > 0 and len(trades_plain) > 0
    # the estimate changed, so the trades did
    assert list(trades_oi["open_date"]) != list(trades_plain["open_date"])
