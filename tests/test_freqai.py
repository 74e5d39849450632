"""FreqAI: the liq_* feature helpers, and the twins backtested through FreqAI offline.

The helper tests run on the bundled candles. The FreqAI tests run the real ``freqtrade
backtesting`` and ``lookahead-analysis`` commands through the replay exchange with the shipped
overlays (config/futures-freqai-*.json) plus a test overlay that only shortens the training
and backtest periods and the number of trees.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _replay_support import make_datadir

from liqsignals import COLUMNS, sample
from liqsignals.mainjob import load_latest_backtest
from liqsignals.replay.offline import OfflineResult, run_offline

ROOT = Path(__file__).resolve().parent.parent
TWINS = {"liq": "LiqFreqAIExample", "priceonly": "LiqFreqAIPriceOnly"}
START = pd.Timestamp("2024-06-01", tz="UTC")  # the bundled sample's first candle
END = pd.Timestamp("2024-07-05", tz="UTC")
TIMERANGE = "20240622-20240701"  # 9 days: three 3-day backtest windows
LOOKAHEAD_TIMERANGE = "20240622-20240628"  # two windows
FAST = {
    "freqai": {
        "train_period_days": 7,
        "backtest_period_days": 3,
        "feature_parameters": {"include_shifted_candles": 0},
        "model_training_parameters": {"n_estimators": 25},
    }
}


def _candles(pair: str = "BTC/USDT:USDT", days: int = 30) -> pd.DataFrame:
    return sample.load_candles(pair, "15m").iloc[: days * 96].reset_index(drop=True)


# --- the helpers --------------------------------------------------------------------------


def test_feature_names_come_from_the_column_table() -> None:
    from liqsignals.strategy.freqai import FREQAI_UNITS, freqai_columns

    names = freqai_columns()
    assert names and set(names) <= set(COLUMNS)
    assert all(COLUMNS[n].unit in FREQAI_UNITS for n in names)
    # price and notional columns are not features (their level depends on pair and year)
    assert "liq_magnet_price" not in names and "liq_long_total" not in names
    assert {"liq_imbalance", "liq_magnet_dist_pct", "liq_sweep_long"} <= set(names)


def test_expand_basic_all_and_standard_follow_freqai_conventions() -> None:
    from liqsignals.strategy.freqai import (
        PERIOD_FEATURES,
        PRESENCE_FLAGS,
        SHARE_COLUMNS,
        LiqFeatureCache,
        freqai_columns,
        liq_expand_all,
        liq_expand_basic,
        liq_standard,
    )

    class Holder:  # what the helpers read from a strategy
        timeframe = "15m"
        liq_freqai_cache = LiqFeatureCache()

    df = _candles(days=14)
    meta = {"pair": "BTC/USDT:USDT", "tf": "15m"}
    basic = liq_expand_basic(df.copy(), meta, windows=("1d", "2d"), strategy=Holder)
    added = [c for c in basic.columns if c not in df.columns]
    tails = [n[len("liq_") :] for n in (*freqai_columns(), *SHARE_COLUMNS, *PRESENCE_FLAGS)]
    assert sorted(added) == sorted(f"%-liq_{w}_{t}" for w in ("1d", "2d") for t in tails)
    every = liq_expand_all(df.copy(), 8, meta, windows=("1d", "2d"), strategy=Holder)
    added_all = {c for c in every.columns if c not in df.columns}
    assert added_all == {
        f"%-liq_{w}_{n[len('liq_') :]}-period" for w in ("1d", "2d") for n in PERIOD_FEATURES
    }
    # the engine ran once for the (pair, tf, frame); the period hook reused it
    assert Holder.liq_freqai_cache.misses == 1 and Holder.liq_freqai_cache.hits == 1
    std = liq_standard(df.copy(), {"pair": "BTC/USDT:USDT"}, windows=("1d",), strategy=Holder)
    std_cols = [c for c in std.columns if c not in df.columns]
    assert std_cols and all(c.startswith("%-liq_") and c.endswith("-std") for c in std_cols)
    # a trailing mean over 8 candles, recomputed here from the basic column
    src = basic["%-liq_1d_imbalance"]
    want = src.rolling(8).mean()
    got = every["%-liq_1d_imbalance_mean-period"]
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), equal_nan=True)


def test_no_nan_after_warmup_and_warmup_stays_nan() -> None:
    from liqsignals.strategy.freqai import liq_feature_frame

    df = _candles(days=14)
    feats = liq_feature_frame(df, "BTC/USDT:USDT", "15m", windows=("1d",))
    warm = 96 + 1  # one day of 15m candles, then the first readout comparison
    assert feats.iloc[:90].isna().all(axis=1).all()  # warm-up: nothing filled in
    late = feats.iloc[600:]  # past every lookback (ATR, drift, intensity / 4)
    assert np.isfinite(late.to_numpy()).all(), late.columns[~np.isfinite(late).all()].tolist()
    assert set(np.unique(feats["liq_has_long_cluster"].iloc[warm:])) <= {0.0, 1.0}
    # filled distances are 0 exactly where the flag says there is no cluster
    no_cluster = feats["liq_has_long_cluster"].iloc[warm:] == 0
    assert (feats["liq_long_cluster_dist_pct"].iloc[warm:][no_cluster] == 0).all()


def test_features_are_causal() -> None:
    """The value at candle t is the same whether or not later candles exist."""
    from liqsignals.strategy.freqai import liq_expand_all, liq_expand_basic

    df = _candles(days=14)
    meta = {"pair": "BTC/USDT:USDT", "tf": "15m"}
    full_b = liq_expand_basic(df.copy(), meta, windows=("1d",))
    full_a = liq_expand_all(df.copy(), 16, meta, windows=("1d",))
    for n in (300, 777, 1100):
        part = df.iloc[:n].copy()
        pd.testing.assert_frame_equal(
            liq_expand_basic(part, meta, windows=("1d",)), full_b.iloc[:n]
        )
        pd.testing.assert_frame_equal(
            liq_expand_all(part, 16, meta, windows=("1d",)), full_a.iloc[:n]
        )


def test_target_is_the_signed_excursion() -> None:
    from liqsignals.strategy.freqai import signed_excursion

    df = pd.DataFrame(
        {"high": [10, 12, 11, 15, 9.0], "low": [9, 8, 10, 7, 8.0], "close": [10, 10, 10, 10, 10.0]}
    )
    got = signed_excursion(df, 2).to_numpy()
    # t=0: next two highs 12, 11 -> +0.2; lows 8, 10 -> -0.2; t=1: 15 / 7 -> 0.5 - 0.3
    np.testing.assert_allclose(got[:3], [0.0, 0.2, 0.5 - 0.3])
    assert np.isnan(got[3:]).all()
    with pytest.raises(ValueError):
        signed_excursion(df, 0)


def test_bad_windows_are_clear_errors() -> None:
    from liqsignals.strategy.freqai import liq_feature_frame

    df = _candles(days=3)
    with pytest.raises(TypeError, match="sequence"):
        liq_feature_frame(df, "BTC/USDT:USDT", "15m", windows="1d")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distinct"):
        liq_feature_frame(df, "BTC/USDT:USDT", "15m", windows=("1d", "1d"))


def test_the_twins_differ_only_in_features() -> None:
    sys.path.insert(0, str(ROOT / "strategies"))
    try:
        from LiqFreqAIExample import LiqFreqAIExample
        from LiqFreqAIPriceOnly import LiqFreqAIPriceOnly
    finally:
        sys.path.remove(str(ROOT / "strategies"))
    from liqsignals.strategy.freqai import LiqFreqAIStrategy

    shared = ("timeframe", "minimal_roi", "stoploss", "stop_atr", "atr_period", "entry_z",
              "target", "startup_candle_count", "order_types", "can_short")  # fmt: skip
    for name in shared:
        assert getattr(LiqFreqAIExample, name) == getattr(LiqFreqAIPriceOnly, name), name
    assert LiqFreqAIExample.liq_windows and not LiqFreqAIPriceOnly.liq_windows
    for hook in ("set_freqai_targets", "populate_entry_trend", "populate_exit_trend",
                 "custom_stoploss", "populate_indicators", "feature_engineering_standard"):  # fmt: skip
        assert getattr(LiqFreqAIExample, hook) is getattr(LiqFreqAIStrategy, hook), hook
        assert getattr(LiqFreqAIPriceOnly, hook) is getattr(LiqFreqAIStrategy, hook), hook
    liq, price = (json.loads((ROOT / "config" / f"futures-freqai-{t}.json").read_text())
                  for t in TWINS)  # fmt: skip
    assert liq["freqaimodel"] == price["freqaimodel"] == "LightGBMRegressor"
    assert liq["freqai"]["identifier"] != price["freqai"]["identifier"]
    for cfg in (liq, price):
        cfg["freqai"].pop("identifier")
        cfg.pop("strategy")
    assert liq == price  # the same FreqAI settings otherwise


#: the liq twin's table columns as registered in docs/freqai.md ("Measurement"), written out
REGISTERED = (
    "liq_magnet_side", "liq_magnet_score", "liq_gap_above_pct", "liq_gap_below_pct",
    "liq_imbalance", "liq_long_cluster_dist_pct", "liq_short_cluster_dist_pct",
    "liq_long_cluster_dist_atr", "liq_short_cluster_dist_atr", "liq_magnet_dist_pct",
    "liq_magnet_drift", "liq_intensity", "liq_intensity_bucket", "liq_sweep_long",
    "liq_sweep_long_through", "liq_sweep_short", "liq_sweep_short_through",
)  # fmt: skip


def test_the_twins_features_are_the_frozen_registered_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sys.path.insert(0, str(ROOT / "strategies"))
    try:
        from LiqFreqAIExample import LiqFreqAIExample
    finally:
        sys.path.remove(str(ROOT / "strategies"))
    import liqsignals.strategy.freqai as fa

    assert fa.TWIN_COLUMNS == REGISTERED
    assert LiqFreqAIExample.liq_columns == REGISTERED

    class Twin:  # what the helpers read from the liq twin
        timeframe = "15m"
        liq_columns = LiqFreqAIExample.liq_columns
        liq_freqai_cache = fa.LiqFeatureCache()

    # a column picked by freqai_columns() after the table grows (stand-in: liq_long_total) is
    # not a twin feature
    monkeypatch.setattr(fa, "freqai_columns", lambda: (*REGISTERED, "liq_long_total"))
    df = _candles(days=10)
    meta = {"pair": "BTC/USDT:USDT", "tf": "15m"}
    basic = fa.liq_expand_basic(df.copy(), meta, windows=("1d", "1w"), strategy=Twin)
    added = sorted(c for c in basic.columns if c not in df.columns)
    extra = ("liq_long_share", "liq_liquidated_share", "liq_has_long_cluster",
             "liq_has_short_cluster", "liq_has_magnet")  # fmt: skip
    want = sorted(f"%-liq_{w}_{n[4:]}" for w in ("1d", "1w") for n in (*REGISTERED, *extra))
    assert added == want and len(added) == 44
    # a strategy without liq_columns follows the table (here: the patched helper)
    plain = fa.liq_expand_basic(df.copy(), meta, windows=("1d",), strategy=None)
    assert "%-liq_long_total" in plain.columns


# --- through FreqAI, offline ----------------------------------------------------------------


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_datadir(tmp_path_factory.mktemp("freqai-data"), start=START, end=END)


@pytest.fixture(scope="module")
def fast_overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("freqai-fast") / "fast.json"
    path.write_text(json.dumps(FAST))
    return path


def _command(twin: str, command: str, datadir: Path, userdir: Path, fast: Path) -> list[str]:
    return [sys.executable, "-m", "freqtrade", command,
            "-c", str(ROOT / "config" / "futures.json"),
            "-c", str(ROOT / "config" / f"futures-freqai-{twin}.json"),
            "-c", str(fast), "-c", "{overlay}",
            "--datadir", str(datadir), "--userdir", str(userdir), "--timerange", TIMERANGE]  # fmt: skip


@pytest.fixture(scope="module")
def backtests(
    datadir: Path, fast_overlay: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, OfflineResult]]:
    # one user_data folder for both, as a user has: the identifiers keep the models apart
    userdir = tmp_path_factory.mktemp("freqai-user")
    out = {}
    for twin in TWINS:
        cmd = _command(twin, "backtesting", datadir, userdir, fast_overlay)
        cmd += ["--export", "trades", "--cache", "none"]
        result = run_offline(cmd, datadir, cwd=ROOT, echo=False, timeout=400)
        assert result.returncode == 0, result.output[-3000:]
        out[twin] = (userdir, result)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("twin", list(TWINS))
def test_twin_trades_and_retrains_through_freqai(
    backtests: dict[str, tuple[Path, OfflineResult]], twin: str
) -> None:
    userdir, result = backtests[twin]
    strategy = TWINS[twin]
    stats = load_latest_backtest(userdir / "backtest_results")
    # the newest export is the last twin's; each run's own stats are in its output
    assert re.search(rf"│\s*{strategy}\s*│\s*(\d+)\s*│", result.output), result.output[-2000:]
    trades = int(re.search(rf"│\s*{strategy}\s*│\s*(\d+)\s*│", result.output).group(1))  # type: ignore[union-attr]
    assert trades > 0
    if strategy in stats:
        assert stats[strategy]["total_trades"] == trades
    # FreqAI trained a model per pair per backtest window: 3 windows, so at least 2 retrains
    trained = re.findall(r"Done training (\S+)", result.output)
    assert trained.count("BTC/USDT:USDT") >= 3 and trained.count("ETH/USDT:USDT") >= 3
    assert "Training 3 timeranges" in result.output
    ident = json.loads((ROOT / "config" / f"futures-freqai-{twin}.json").read_text())["freqai"][
        "identifier"
    ]
    folder = userdir / "models" / ident
    subs = sorted(p.name for p in folder.glob("sub-train-*"))
    assert len([s for s in subs if s.startswith("sub-train-BTC_")]) >= 3, subs
    saved = sorted((folder / "backtesting_predictions").glob("*_prediction.feather"))
    assert len(saved) >= 6
    pred = pd.read_feather(saved[0])
    assert {"&-excursion", "&-excursion_mean", "&-excursion_std", "do_predict"} <= set(pred)
    assert (pred["do_predict"] == 1).mean() > 0.9


@pytest.mark.slow
def test_twins_write_separate_model_folders(
    backtests: dict[str, tuple[Path, OfflineResult]],
) -> None:
    userdir = backtests["liq"][0]
    folders = {p.name for p in (userdir / "models").iterdir() if p.is_dir()}
    assert folders == {"liqfreqai-liq", "liqfreqai-priceonly"}
    features: dict[str, set[str]] = {}
    for name in folders:
        meta = next((userdir / "models" / name).glob("sub-train-BTC_*/*_metadata.json"))
        features[name] = set(json.loads(meta.read_text())["training_features_list"])
    liq, price = features["liqfreqai-liq"], features["liqfreqai-priceonly"]
    assert price < liq  # the liq twin has every price feature and more
    assert not any("liq_" in f for f in price)
    extra = liq - price
    assert extra and all("liq_" in f for f in extra)
    # expanded over both timeframes and both corr pairs
    assert any(f.endswith("_1h") for f in extra) and any(f.endswith("_15m") for f in extra)
    assert any("ETH" in f for f in extra)


@pytest.mark.slow
def test_lookahead_analysis_on_the_freqai_strategy(
    datadir: Path, fast_overlay: Path, tmp_path: Path
) -> None:
    # freqtrade's lookahead-analysis supports FreqAI strategies; it purges the identifier's
    # model folder before each backtest, and the FreqAI targets (set_freqai_targets, "&-")
    # are flagged as biased by design: freqtrade documents that they can be ignored
    # Five signals (freqtrade's defaults are 10 and 20) over two backtest windows keep the
    # test short: every signal is one more FreqAI backtest that retrains the models.
    export = tmp_path / "lookahead.csv"
    cmd = _command("liq", "lookahead-analysis", datadir, tmp_path, fast_overlay)
    cmd[cmd.index("--timerange") + 1] = LOOKAHEAD_TIMERANGE
    cmd += ["--minimum-trade-amount", "4", "--targeted-trade-amount", "5",
            "--lookahead-analysis-exportfilename", str(export)]  # fmt: skip
    result = run_offline(cmd, datadir, cwd=ROOT, echo=False, timeout=600)
    assert result.returncode == 0, result.output[-3000:]
    assert "Training 2 timeranges" in result.output  # FreqAI trained in the analysis' backtests
    rows: list[dict[str, Any]] = list(csv.DictReader(export.open()))
    assert len(rows) == 1, result.output[-3000:]
    row = rows[0]
    assert row["strategy"] == "LiqFreqAIExample"
    assert int(row["total_signals"]) == 5
    # no entry or exit moved when the future was cut off
    assert row["biased_entry_signals"] == row["biased_exit_signals"] == "0", row
    # What differs: FreqAI's output columns (the prediction under the target's name "&-...",
    # its label statistics, do_predict) and the signals made from them. freqtrade documents
    # the "&-" target columns as false positives; here every difference is a candle the cut
    # run did not predict at all (FreqAI's fill: 0 and do_predict 0), not a changed value.
    flagged = {b for b in (row.get("biased_indicators") or "").split(",") if b}
    outputs = {"do_predict", "enter_tag", "enter_long", "enter_short", "exit_long", "exit_short"}
    assert flagged <= outputs | {f for f in flagged if f.startswith("&-")}, flagged
    diffs = re.findall(r"found look ahead bias in column (\S+)\. (\S+) != (\S+)", result.output)
    assert diffs
    for column, _full, cut in diffs:
        if column.startswith("&-") or column == "do_predict":
            assert float(cut) == 0.0, (column, _full, cut)
    assert not any(c.startswith("%") or c == "atr" for c, _, _ in diffs)
